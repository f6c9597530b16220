package loadgen

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"time"
)

// ServerStats is what the generator saw of a local server process.
type ServerStats struct {
	PID int `json:"pid"`
	// PeakRSSBytes is the highest VmRSS sampled every 100 ms during the run.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// HWMBytes is the process's own high-water mark (VmHWM) at the end:
	// the peak over its whole life, which includes earlier runs.
	HWMBytes int64 `json:"hwm_bytes"`
	// CPUS is the CPU time (user and system) the server process used during
	// the measured phase of a mixed workload, and PostgresCPUS the CPU time
	// of every process named "postgres" on this machine in the same span
	// (the figures mean "this server's database" only when the machine runs
	// no other PostgreSQL work). Divided by the operations they give the
	// cost of one operation, which is steadier than throughput on a busy
	// machine.
	CPUS         float64 `json:"cpu_s,omitempty"`
	PostgresCPUS float64 `json:"postgres_cpu_s,omitempty"`
}

type rssSampler struct {
	pid      int
	cpu0     [2]float64 // server, postgres at markCPU
	cpu      [2]float64 // their use between markCPU calls
	mu       gosync.Mutex
	peak     int64
	stopOnce gosync.Once
	done     chan struct{}
}

func startRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, done: make(chan struct{})}
	s.sample()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	rss, _ := procStatus(s.pid, "VmRSS")
	s.mu.Lock()
	s.peak = max(s.peak, rss)
	s.mu.Unlock()
}

func (s *rssSampler) stop() { s.stopOnce.Do(func() { close(s.done) }) }

func (s *rssSampler) stats() *ServerStats {
	s.sample()
	hwm, _ := procStatus(s.pid, "VmHWM")
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ServerStats{PID: s.pid, PeakRSSBytes: s.peak, HWMBytes: hwm, CPUS: s.cpu[0], PostgresCPUS: s.cpu[1]}
}

// markCPU starts (start true) or ends the span whose CPU use stats reports.
func (s *rssSampler) markCPU(start bool) {
	now := [2]float64{procCPU(s.pid), postgresCPU()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if start {
		s.cpu0 = now
		return
	}
	s.cpu = [2]float64{now[0] - s.cpu0[0], now[1] - s.cpu0[1]}
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat times (100
// on every architecture Go supports).
const clockTicks = 100

// procCPU returns the user and system CPU seconds pid has used, its
// waited-for children included; 0 when it cannot be read.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'. utime, stime, cutime, cstime are fields 14-17.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return float64(ticks) / clockTicks
}

// postgresCPU sums procCPU over this machine's processes named "postgres"
// (the postmaster, its background workers and every backend; a backend
// that exits moves its time into the postmaster's children times, which
// procCPU counts).
func postgresCPU() float64 {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var total float64
	for _, p := range procs {
		comm, err := os.ReadFile(p + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		total += procCPU(pid)
	}
	return total
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// findListener returns the pid of the local process listening on rawURL's
// port, from /proc/net/tcp{,6} and the processes' socket descriptors. It
// answers 0 when the host is not local or the process is not visible.
func findListener(rawURL string) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, err
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		portStr = "80"
		if u.Scheme == "https" {
			portStr = "443"
		}
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return 0, nil
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseInt(fs[1][i+1:], 16, 32)
			if err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == self {
			continue
		}
		fds, _ := os.ReadDir(p + "/fd")
		for _, fd := range fds {
			if link, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && inodes[link] {
				return pid, nil
			}
		}
	}
	return 0, nil
}
