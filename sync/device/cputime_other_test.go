//go:build !unix

package device

import "time"

func processCPU() time.Duration { return 0 }
