package main

// Local PostgreSQL for dev mode and tests.
//
// LocalPG manages a private PostgreSQL cluster whose data directory lives in
// the project (for example .syncplane/testpg). It never touches a system
// cluster: it listens only on 127.0.0.1 on its own port (chosen at first
// init and remembered in the data dir) and keeps its unix socket inside the
// data dir.
//
// Files next to the data dir:
//
//	<dir>.lock   flock(2) lock + JSON state (leases, see runLocalPG "--lease")
//
// Files inside the data dir, besides PostgreSQL's own:
//
//	syncplane.conf  our settings, included from postgresql.conf
//	server.log      server log (pg_ctl -l)

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	localPGConfFile  = "syncplane.conf"
	localPGLogFile   = "server.log"
	localPGSuperuser = "postgres"
	localPGOSUser    = "postgres" // system user the server runs as when we are root
	localPGPackage   = "postgresql"
	localPGRoot      = "/usr/lib/postgresql"
	localPGReadyWait = 60 * time.Second
	// Unix socket paths are limited to 107 bytes (sun_path) on Linux.
	maxUnixSocketPath = 107
)

// LocalPG is a private PostgreSQL cluster under a project-local directory, for dev mode and tests.
type LocalPG struct {
	Dir     string // absolute path of the data directory
	Port    int    // TCP port on 127.0.0.1
	BinDir  string // directory holding initdb, pg_ctl and postgres
	Version string // PostgreSQL major version of the data dir ("" if unknown)

	log   io.Writer
	runAs *localPGUser // nil: run server commands as the current user
}

type localPGUser struct {
	name     string
	uid, gid uint32
	home     string
}

// localPGState is stored as JSON in <dir>.lock. It tracks the processes that
// hold a lease on the cluster (scripts/test.sh) so that the last one to leave
// stops a cluster that was started on their behalf, and never one that was
// already running before.
type localPGState struct {
	StartedForLeases bool  `json:"started_for_leases"`
	Leases           []int `json:"leases,omitempty"`
}

// StartLocalPG starts (initializing if needed) the cluster in dir and waits
// until it accepts connections. It is idempotent: an existing data dir is
// reused with its port and data, and a cluster already running in it is
// reused as is. Progress goes to log (may be nil).
func StartLocalPG(ctx context.Context, dir string, log io.Writer) (*LocalPG, error) {
	p, unlock, err := openLocalPG(ctx, dir, log, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	wasRunning, err := p.start(ctx)
	if err != nil {
		return nil, err
	}
	if !wasRunning {
		// Started outside of any lease: no lease holder may stop it.
		if err := p.writeState(localPGState{}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// URL returns the connection URL of database dbname as the superuser.
func (p *LocalPG) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(localPGSuperuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// EnsureDatabase creates database name unless it already exists.
func (p *LocalPG) EnsureDatabase(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("localpg: empty database name")
	}
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return fmt.Errorf("localpg: connect to %s: %w", p.URL("postgres"), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("localpg: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("localpg: create database %q: %w", name, err)
	}
	fmt.Fprintf(p.logw(), "localpg: created database %q\n", name)
	return nil
}

// Stop shuts the cluster down (pg_ctl stop -m fast). Stopping a cluster that
// is not running is not an error.
func (p *LocalPG) Stop(ctx context.Context) error {
	unlock, err := lockLocalPG(ctx, p.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	return p.stop(ctx)
}

// openLocalPG resolves binaries and the OS user for dir and takes the dir
// lock. With install, missing PostgreSQL binaries are installed when root.
func openLocalPG(ctx context.Context, dir string, log io.Writer, install bool) (*LocalPG, func(), error) {
	if log == nil {
		log = io.Discard
	}
	if dir == "" {
		return nil, nil, errors.New("localpg: empty data directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("localpg: %w", err)
	}
	p := &LocalPG{Dir: abs, log: log}
	if err := mkdirParents(abs); err != nil {
		return nil, nil, err
	}
	unlock, err := lockLocalPG(ctx, abs)
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unlock()
		}
	}()

	if b, err := os.ReadFile(filepath.Join(abs, "PG_VERSION")); err == nil {
		p.Version = strings.TrimSpace(string(b))
	}
	if p.BinDir, err = findPGBinDir(p.Version); err != nil {
		if !install {
			return nil, nil, err
		}
		if err := installPostgres(ctx, log, err); err != nil {
			return nil, nil, err
		}
		if p.BinDir, err = findPGBinDir(p.Version); err != nil {
			return nil, nil, err
		}
	}
	if os.Geteuid() == 0 {
		if p.runAs, err = lookupPGUser(); err != nil {
			return nil, nil, err
		}
	}
	ok = true
	return p, unlock, nil
}

// start brings the cluster up; it must be called with the dir lock held.
// It reports whether the cluster was already running.
func (p *LocalPG) start(ctx context.Context) (wasRunning bool, err error) {
	if err := p.prepareDir(ctx); err != nil {
		return false, err
	}
	running, err := p.status(ctx)
	if err != nil {
		return false, err
	}
	if running {
		port, err := p.runningPort()
		if err != nil {
			return false, err
		}
		p.Port = port
		fmt.Fprintf(p.logw(), "localpg: reusing running cluster in %s (port %d)\n", p.Dir, p.Port)
		return true, p.waitReady(ctx)
	}
	if err := p.configure(); err != nil {
		return false, err
	}
	fmt.Fprintf(p.logw(), "localpg: starting PostgreSQL %s in %s on 127.0.0.1:%d\n", p.Version, p.Dir, p.Port)
	if _, err := p.run(ctx, "pg_ctl", "-D", p.Dir, "-l", p.logPath(), "-w", "-t", "60", "start"); err != nil {
		return false, err
	}
	return false, p.waitReady(ctx)
}

func (p *LocalPG) stop(ctx context.Context) error {
	running, err := p.status(ctx)
	if err != nil || !running {
		return err
	}
	fmt.Fprintf(p.logw(), "localpg: stopping cluster in %s\n", p.Dir)
	_, err = p.run(ctx, "pg_ctl", "-D", p.Dir, "-m", "fast", "-w", "-t", "60", "stop")
	return err
}

// prepareDir creates and initializes the data dir if needed and makes sure
// the server's OS user owns it and can reach it.
func (p *LocalPG) prepareDir(ctx context.Context) error {
	initialized := p.Version != ""
	if !initialized {
		entries, err := os.ReadDir(p.Dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("localpg: %w", err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("localpg: %s is not empty and not a PostgreSQL data directory (no PG_VERSION); remove it or choose another --dir", p.Dir)
		}
		if err := os.MkdirAll(p.Dir, 0o700); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
	}
	if err := p.fixOwnership(initialized); err != nil {
		return err
	}
	if err := p.checkTraversable(); err != nil {
		return err
	}
	if initialized {
		return nil
	}
	fmt.Fprintf(p.logw(), "localpg: initializing new cluster in %s (%s)\n", p.Dir, p.BinDir)
	if _, err := p.run(ctx, "initdb", "-D", p.Dir, "--auth=trust", "--username="+localPGSuperuser,
		"--encoding=UTF8", "--locale=C"); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(p.Dir, "PG_VERSION"))
	if err != nil {
		return fmt.Errorf("localpg: initdb left no PG_VERSION: %w", err)
	}
	p.Version = strings.TrimSpace(string(b))
	return nil
}

// fixOwnership gives the data dir to the server's OS user, mode 0700.
func (p *LocalPG) fixOwnership(recursive bool) error {
	if p.runAs == nil {
		return os.Chmod(p.Dir, 0o700)
	}
	uid, gid := int(p.runAs.uid), int(p.runAs.gid)
	fi, err := os.Stat(p.Dir)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return os.Chmod(p.Dir, 0o700)
	}
	if recursive {
		fmt.Fprintf(p.logw(), "localpg: giving %s to user %s\n", p.Dir, p.runAs.name)
		err = filepath.WalkDir(p.Dir, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, gid)
		})
	} else {
		err = os.Chown(p.Dir, uid, gid)
	}
	if err != nil {
		return fmt.Errorf("localpg: chown %s to %s: %w", p.Dir, p.runAs.name, err)
	}
	return os.Chmod(p.Dir, 0o700)
}

// checkTraversable verifies the server's OS user can reach the data dir.
func (p *LocalPG) checkTraversable() error {
	if p.runAs == nil {
		return nil
	}
	for d := filepath.Dir(p.Dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			var bit fs.FileMode = 0o001
			switch {
			case st.Uid == p.runAs.uid:
				bit = 0o100
			case st.Gid == p.runAs.gid:
				bit = 0o010
			}
			if fi.Mode().Perm()&bit == 0 {
				return fmt.Errorf("localpg: PostgreSQL runs as user %q, which cannot traverse %s (mode %v); run `chmod o+x %s` or use a --dir elsewhere",
					p.runAs.name, d, fi.Mode().Perm(), d)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

var confPortRE = regexp.MustCompile(`(?m)^\s*port\s*=\s*(\d+)`)

// configure writes syncplane.conf (port, listen address, socket dir, dev
// settings) and includes it from postgresql.conf. The port chosen at first
// init is kept, unless something else has taken it since.
func (p *LocalPG) configure() error {
	confPath := filepath.Join(p.Dir, localPGConfFile)
	port := 0
	if b, err := os.ReadFile(confPath); err == nil {
		if m := confPortRE.FindSubmatch(b); m != nil {
			port, _ = strconv.Atoi(string(m[1]))
		}
	}
	if port != 0 && !portFree(port) {
		fmt.Fprintf(p.logw(), "localpg: port %d is taken by another process; picking a new one\n", port)
		port = 0
	}
	if port == 0 {
		var err error
		if port, err = pickFreePort(); err != nil {
			return err
		}
	}
	p.Port = port

	socketDir := p.Dir
	if len(socketDir)+len("/.s.PGSQL.65535.lock") > maxUnixSocketPath {
		socketDir = "" // path too long for a unix socket: TCP only
	}
	conf := fmt.Sprintf(`# Managed by syncplane localpg (cmd/syncplane/localpg.go); rewritten on every start.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 200
fsync = on
logging_collector = off
log_line_prefix = '%%m [%%p] '
timezone = 'UTC'
`, port, strings.ReplaceAll(socketDir, "'", "''"))
	if err := p.writeFile(confPath, []byte(conf)); err != nil {
		return err
	}

	mainConf := filepath.Join(p.Dir, "postgresql.conf")
	b, err := os.ReadFile(mainConf)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	include := "include_if_exists = '" + localPGConfFile + "'"
	if !bytes.Contains(b, []byte(include)) {
		b = append(b, []byte("\n# Added by syncplane localpg.\n"+include+"\n")...)
		if err := p.writeFile(mainConf, b); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a file in the data dir, owned by the server's OS user.
func (p *LocalPG) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if p.runAs != nil {
		if err := os.Chown(path, int(p.runAs.uid), int(p.runAs.gid)); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
	}
	return nil
}

// status reports whether a server is running in the data dir (pg_ctl status).
func (p *LocalPG) status(ctx context.Context) (bool, error) {
	if _, err := os.Stat(filepath.Join(p.Dir, "PG_VERSION")); err != nil {
		return false, nil // no cluster, nothing can be running
	}
	out, err := p.command(ctx, "pg_ctl", "-D", p.Dir, "status").CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 3:
		return false, nil
	default:
		return false, fmt.Errorf("localpg: pg_ctl status -D %s: %v\n%s", p.Dir, err, bytes.TrimSpace(out))
	}
}

// runningPort reads the port of the running server from postmaster.pid
// (line 4), falling back to syncplane.conf.
func (p *LocalPG) runningPort() (int, error) {
	if b, err := os.ReadFile(filepath.Join(p.Dir, "postmaster.pid")); err == nil {
		lines := strings.Split(string(b), "\n")
		if len(lines) >= 4 {
			if port, err := strconv.Atoi(strings.TrimSpace(lines[3])); err == nil && port > 0 {
				return port, nil
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(p.Dir, localPGConfFile)); err == nil {
		if m := confPortRE.FindSubmatch(b); m != nil {
			return strconv.Atoi(string(m[1]))
		}
	}
	return 0, fmt.Errorf("localpg: cannot determine the port of the cluster running in %s", p.Dir)
}

// waitReady waits until a pgx connection to the postgres database succeeds.
func (p *LocalPG) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, localPGReadyWait)
	defer cancel()
	var lastErr error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, p.URL("postgres"))
		if err == nil {
			err = conn.Ping(cctx)
			conn.Close(context.WithoutCancel(ctx))
		}
		ccancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("localpg: server in %s does not accept connections on port %d: %v%s",
				p.Dir, p.Port, lastErr, p.logTail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logw is the progress writer; never nil.
func (p *LocalPG) logw() io.Writer {
	if p.log == nil {
		return io.Discard
	}
	return p.log
}

func (p *LocalPG) logPath() string { return filepath.Join(p.Dir, localPGLogFile) }

// logTail returns the last lines of the server log, formatted for an error.
func (p *LocalPG) logTail() string {
	b, err := os.ReadFile(p.logPath())
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", p.logPath(), strings.Join(lines, "\n"))
}

// command builds an exec.Cmd for a PostgreSQL binary, run as the server's OS
// user, with PG* variables from our environment removed.
func (p *LocalPG) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.BinDir, name), args...)
	cmd.Dir = "/" // the caller's cwd may not be readable by the server's user
	cmd.WaitDelay = 5 * time.Second
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		if p.runAs != nil && (strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "USER=") || strings.HasPrefix(kv, "LOGNAME=")) {
			continue
		}
		env = append(env, kv)
	}
	if p.runAs != nil {
		env = append(env, "HOME="+p.runAs.home, "USER="+p.runAs.name, "LOGNAME="+p.runAs.name)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: p.runAs.uid, Gid: p.runAs.gid, Groups: []uint32{},
		}}
	}
	cmd.Env = env
	return cmd
}

// run runs a PostgreSQL binary and returns its combined output. Errors name
// the command and include its output and the tail of the server log.
func (p *LocalPG) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := p.command(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		who := ""
		if p.runAs != nil {
			who = " (as user " + p.runAs.name + ")"
		}
		msg := strings.TrimSpace(string(out))
		if msg != "" {
			msg = "\n" + msg
		}
		return string(out), fmt.Errorf("localpg: %s %s%s failed: %v%s%s",
			cmd.Path, strings.Join(args, " "), who, err, msg, p.logTail())
	}
	return string(out), nil
}

// findPGBinDir finds initdb/pg_ctl/postgres: /usr/lib/postgresql/<v>/bin for
// the data dir's version (or the highest installed), else $PATH.
func findPGBinDir(version string) (string, error) {
	hasAll := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if version != "" {
		if dir := filepath.Join(localPGRoot, version, "bin"); hasAll(dir) {
			return dir, nil
		}
	} else {
		entries, _ := os.ReadDir(localPGRoot)
		var versions []string
		for _, e := range entries {
			if e.IsDir() && hasAll(filepath.Join(localPGRoot, e.Name(), "bin")) {
				versions = append(versions, e.Name())
			}
		}
		if len(versions) > 0 {
			sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
			return filepath.Join(localPGRoot, versions[len(versions)-1], "bin"), nil
		}
	}
	if pgCtl, err := exec.LookPath("pg_ctl"); err == nil {
		if dir := filepath.Dir(pgCtl); hasAll(dir) {
			return dir, nil
		}
	}
	if version != "" {
		return "", fmt.Errorf("localpg: the data directory was created by PostgreSQL %s but %s/%s/bin is missing; install package %s-%s",
			version, localPGRoot, version, localPGPackage, version)
	}
	return "", fmt.Errorf("localpg: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in %s/<version>/bin or $PATH; install package %q (Debian/Ubuntu: apt-get install %s)",
		localPGRoot, localPGPackage, localPGPackage)
}

// versionLess compares dotted numeric versions ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errX := strconv.Atoi(as[i])
		y, errY := strconv.Atoi(bs[i])
		if errX != nil || errY != nil {
			if as[i] != bs[i] {
				return as[i] < bs[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// installPostgres installs the postgresql package with apt-get when running
// as root; otherwise it returns notFound.
func installPostgres(ctx context.Context, log io.Writer, notFound error) error {
	if os.Geteuid() != 0 {
		return notFound
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%w (apt-get not available to install it)", notFound)
	}
	fmt.Fprintf(log, "localpg: PostgreSQL not found; installing package %q: apt-get update && apt-get install -y %s\n", localPGPackage, localPGPackage)
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", localPGPackage}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("localpg: apt-get %s failed: %w (install package %q by hand)", strings.Join(args, " "), err, localPGPackage)
		}
	}
	return nil
}

func lookupPGUser() (*localPGUser, error) {
	u, err := user.Lookup(localPGOSUser)
	if err != nil {
		return nil, fmt.Errorf("localpg: PostgreSQL refuses to run as root and system user %q does not exist (it comes with package %q): %w",
			localPGOSUser, localPGPackage, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("localpg: user %q: %w", localPGOSUser, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("localpg: user %q has uid 0; PostgreSQL refuses to run as root", localPGOSUser)
	}
	home := u.HomeDir
	if home == "" {
		home = "/"
	}
	return &localPGUser{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: home}, nil
}

// mkdirParents creates the missing parents of dir with mode 0755 regardless
// of umask, so the server's OS user can traverse them.
func mkdirParents(dir string) error {
	var missing []string
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	for _, d := range missing {
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
	}
	return nil
}

func pickFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// lockLocalPG takes an exclusive flock on <dir>.lock, serializing start, stop
// and lease bookkeeping between processes sharing the dir.
func lockLocalPG(ctx context.Context, dir string) (func(), error) {
	path := dir + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localpg: open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("localpg: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("localpg: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *LocalPG) readState() localPGState {
	var st localPGState
	if b, err := os.ReadFile(p.Dir + ".lock"); err == nil && len(bytes.TrimSpace(b)) > 0 {
		_ = json.Unmarshal(b, &st) // a corrupt state only loses leases
	}
	return st
}

func (p *LocalPG) writeState(st localPGState) error {
	b, _ := json.Marshal(st)
	// Rewrite in place: the lock is held on this inode.
	if err := os.WriteFile(p.Dir+".lock", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("localpg: write state: %w", err)
	}
	return nil
}

// liveLeases drops leases of processes that no longer exist.
func liveLeases(pids []int) []int {
	var live []int
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			live = append(live, pid)
		}
	}
	return live
}

// startWithLease starts the cluster and records pid as a lease holder.
func startWithLease(ctx context.Context, dir string, log io.Writer, pid int) (*LocalPG, error) {
	p, unlock, err := openLocalPG(ctx, dir, log, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	wasRunning, err := p.start(ctx)
	if err != nil {
		return nil, err
	}
	st := p.readState()
	if !wasRunning {
		st.StartedForLeases = true
	}
	st.Leases = liveLeases(st.Leases)
	if !containsInt(st.Leases, pid) {
		st.Leases = append(st.Leases, pid)
	}
	return p, p.writeState(st)
}

// releaseLease drops pid's lease; the last holder stops a cluster that was
// started for lease holders. It reports whether the cluster was stopped.
func releaseLease(ctx context.Context, dir string, log io.Writer, pid int) (bool, error) {
	p, unlock, err := openLocalPG(ctx, dir, log, false)
	if err != nil {
		return false, err
	}
	defer unlock()
	st := p.readState()
	var rest []int
	for _, l := range liveLeases(st.Leases) {
		if l != pid {
			rest = append(rest, l)
		}
	}
	st.Leases = rest
	if len(rest) > 0 {
		fmt.Fprintf(log, "localpg: leaving cluster in %s running for %d other user(s)\n", p.Dir, len(rest))
		return false, p.writeState(st)
	}
	if !st.StartedForLeases {
		return false, p.writeState(st) // was running before any lease: leave it alone
	}
	if err := p.stop(ctx); err != nil {
		return false, err
	}
	return true, p.writeState(localPGState{})
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

const localPGUsage = `usage: syncplane localpg <command> [flags]

Manage a private PostgreSQL cluster for development and tests.

commands:
  start  --dir D [--db NAME] [--lease PID]
         start (or reuse) the cluster in D, create database NAME, print its URL
  status --dir D [--db NAME]
         print the URL and exit 0 if running, exit 3 if not
  stop   --dir D
         stop the cluster (pg_ctl stop -m fast)
  release --dir D --lease PID
         drop PID's lease; the last holder stops a cluster started with --lease
`

// runLocalPG implements the hidden "localpg" subcommand. args are the
// arguments after "localpg" (a leading "localpg" is tolerated). Only the
// database URL is written to stdout; progress and errors go to stderr.
func runLocalPG(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "localpg" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, localPGUsage)
		return 2
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, localPGUsage)
		return 0
	}
	fset := flag.NewFlagSet("localpg "+cmd, flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("dir", ".syncplane/localpg", "cluster data directory")
	var db *string
	var lease *int
	switch cmd {
	case "start", "status":
		db = fset.String("db", "", "database name (default postgres)")
	}
	switch cmd {
	case "start", "release":
		lease = fset.Int("lease", 0, "PID of the process holding the cluster (see release)")
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "localpg %s: unexpected arguments: %s\n", cmd, strings.Join(fset.Args(), " "))
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "syncplane localpg %s: %v\n", cmd, err)
		return 1
	}

	switch cmd {
	case "start":
		var p *LocalPG
		var err error
		if *lease > 0 {
			p, err = startWithLease(ctx, *dir, stderr, *lease)
		} else {
			p, err = StartLocalPG(ctx, *dir, stderr)
		}
		if err != nil {
			return fail(err)
		}
		name := "postgres"
		if *db != "" {
			name = *db
			if err := p.EnsureDatabase(ctx, name); err != nil {
				return fail(err)
			}
		}
		fmt.Fprintln(stdout, p.URL(name))
		return 0
	case "status":
		p, unlock, err := openLocalPG(ctx, *dir, stderr, false)
		if err != nil {
			return fail(err)
		}
		defer unlock()
		running, err := p.status(ctx)
		if err != nil {
			return fail(err)
		}
		if !running {
			fmt.Fprintf(stderr, "localpg: no cluster running in %s\n", p.Dir)
			return 3
		}
		if p.Port, err = p.runningPort(); err != nil {
			return fail(err)
		}
		name := "postgres"
		if *db != "" {
			name = *db
		}
		fmt.Fprintln(stdout, p.URL(name))
		return 0
	case "stop":
		p, unlock, err := openLocalPG(ctx, *dir, stderr, false)
		if err != nil {
			return fail(err)
		}
		defer unlock()
		if err := p.stop(ctx); err != nil {
			return fail(err)
		}
		if err := p.writeState(localPGState{}); err != nil {
			return fail(err)
		}
		return 0
	case "release":
		if *lease <= 0 {
			fmt.Fprintln(stderr, "localpg release: --lease PID is required")
			return 2
		}
		if _, err := releaseLease(ctx, *dir, stderr, *lease); err != nil {
			return fail(err)
		}
		return 0
	default:
		fmt.Fprintf(stderr, "localpg: unknown command %q\n\n%s", cmd, localPGUsage)
		return 2
	}
}
