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
}

type rssSampler struct {
	pid      int
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
	return &ServerStats{PID: s.pid, PeakRSSBytes: s.peak, HWMBytes: hwm}
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
