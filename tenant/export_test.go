package tenant

// SetFailpoint makes provisioning call f between its steps (tests only).
func SetFailpoint(s *Store, f func(step string) error) { s.failpoint = f }

// ErrCrash, returned from a failpoint, stops provisioning without clean-up.
var ErrCrash = errCrash
