package faults

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// link is a TCP proxy for one directed p2p link: node From dials the
// listener, and the proxy forwards to node To's real p2p port. Cut closes
// every connection and refuses new ones (accept, then close at once); Heal
// lets them through again. The CometBFT handshake is end to end, so the
// peer ID check still holds through it.
type link struct {
	From, To int
	Listen   string
	Target   string

	ln net.Listener
	wg sync.WaitGroup

	// owner, if set, names the node that owns a client socket on
	// 127.0.0.1:port connected to this link (-1 if none): a connection
	// from any node but From took a route it was not given.
	owner func(clientPort, listenPort int) int

	mu        sync.Mutex
	misroute  []string
	selfDials int
	cut       bool
	closed    bool
	conns     map[net.Conn]struct{}
	accepted  int
	refused   int
}

func newLink(from, to int, listen, target string, owner func(clientPort, listenPort int) int) (*link, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy %d→%d: %w", from, to, err)
	}
	l := &link{From: from, To: to, Listen: listen, Target: target, ln: ln, conns: map[net.Conn]struct{}{}, owner: owner}
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

func (l *link) serve() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		if l.cut || l.closed {
			l.refused++
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.accepted++
		l.conns[c] = struct{}{}
		owner := l.owner
		l.mu.Unlock()
		l.wg.Add(1)
		go l.forward(c)
		if owner != nil {
			cp := c.RemoteAddr().(*net.TCPAddr).Port
			lp := l.ln.Addr().(*net.TCPAddr).Port
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				o := owner(cp, lp)
				l.mu.Lock()
				switch {
				case o < 0 || o == l.From:
				case o == l.To:
					// Its own ID at another node's proxy port, learned
					// through PEX: a dial to itself, refused in the
					// handshake. Harmless, but counted.
					l.selfDials++
				default:
					l.misroute = append(l.misroute, fmt.Sprintf("node%d connected to node%d through the proxy of link %d→%d", o, l.To, l.From, l.To))
				}
				l.mu.Unlock()
			}()
		}
	}
}

func (l *link) forward(c net.Conn) {
	defer l.wg.Done()
	defer l.drop(c)
	up, err := net.DialTimeout("tcp", l.Target, 2*time.Second)
	if err != nil {
		return
	}
	if !l.track(up) {
		up.Close()
		return
	}
	defer l.drop(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Whichever side ends, the link ends: close both.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// track registers a connection unless the link was cut meanwhile.
func (l *link) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut || l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *link) drop(c net.Conn) {
	c.Close()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Cut closes every open connection and refuses new ones.
func (l *link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Heal lets connections through again.
func (l *link) Heal() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
}

// Open reports the number of forwarded connections open now (each proxied
// connection counts twice: both legs).
func (l *link) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Close stops the proxy and waits for its goroutines (5s at most).
func (l *link) Close() {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.ln.Close()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// ---------------------------------------------------------------------------
// Bypass detection

// directConns lists the established TCP connections on 127.0.0.1 to any of
// ports (the nodes' real p2p ports) whose client end this process does not
// own: node-to-node connections that do not go through the proxy. A
// connection counts only if two scans 100 ms apart both see it: a proxy
// that dials a node between reading the connection table and reading its
// own sockets looks, for that one scan, like someone else's connection,
// while a node's peer connection around the proxies lasts.
func directConns(ports map[int]int) ([]string, error) {
	first, err := scanConns(ports)
	if err != nil || len(first) == 0 {
		return nil, err
	}
	time.Sleep(100 * time.Millisecond)
	second, err := scanConns(ports)
	if err != nil {
		return nil, err
	}
	var out []string
	for inode, desc := range second {
		if _, ok := first[inode]; ok {
			out = append(out, desc)
		}
	}
	sort.Strings(out)
	return out, nil
}

// scanConns is one scan for directConns, by socket inode. The connection
// table is read before this process's own sockets, so that a socket the
// process opens in between is found among its own.
func scanConns(ports map[int]int) (map[string]string, error) {
	out := map[string]string{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			if file == "/proc/net/tcp" {
				return nil, err
			}
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "01" { // ESTABLISHED
				continue
			}
			lport, rport := hexPort(fs[1]), hexPort(fs[2])
			if node, ok := ports[rport]; ok {
				out[fs[9]] = fmt.Sprintf("127.0.0.1:%d → node%d's p2p port %d (inode %s)", lport, node, rport, fs[9])
			}
		}
		f.Close()
	}
	if len(out) == 0 {
		return out, nil
	}
	own, err := ownSockets()
	if err != nil {
		return nil, err
	}
	for inode := range out {
		if _, mine := own[inode]; mine {
			delete(out, inode)
		}
	}
	return out, nil
}

func hexPort(a string) int {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(a[i+1:], 16, 32)
	if err != nil {
		return -1
	}
	return int(p)
}

// socketInode finds the inode of the established socket 127.0.0.1:local →
// 127.0.0.1:remote, "" if none.
func socketInode(local, remote int) string {
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, ln := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(ln)
			if len(fs) >= 10 && fs[3] == "01" && hexPort(fs[1]) == local && hexPort(fs[2]) == remote {
				return fs[9]
			}
		}
	}
	return ""
}

// pidOwns reports whether process pid has a descriptor on socket inode.
func pidOwns(pid int, inode string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}

// ownSockets returns the inodes of this process's sockets.
func ownSockets() (map[string]struct{}, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	out := map[string]struct{}{}
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = struct{}{}
		}
	}
	return out, nil
}

// TestProxyCutHeal checks the proxy itself: it forwards, a cut closes the
// open connection and refuses new ones, a heal lets them through.
func TestProxyCutHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("fault harness; skipped with -short")
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	l, err := newLink(0, 1, "127.0.0.1:0", echo.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	through := l.ln.Addr().String()
	roundTrip := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "ping\n" {
			return fmt.Errorf("echo %q", line)
		}
		return nil
	}
	c, err := net.Dial("tcp", through)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	l.Cut()
	if err := roundTrip(c); err == nil {
		t.Fatal("an open connection survived a cut")
	}
	c2, err := net.Dial("tcp", through)
	if err == nil {
		if roundTrip(c2) == nil {
			t.Fatal("a new connection went through a cut link")
		}
		c2.Close()
	}
	l.Heal()
	c3, err := net.Dial("tcp", through)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

// TestBypassDetector checks the detector on a connection this process does
// not own: a child process connected straight to a listener.
func TestBypassDetector(t *testing.T) {
	if testing.Short() {
		t.Skip("fault harness; skipped with -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	ports := map[int]int{port: 7}
	if d, err := directConns(ports); err != nil || len(d) != 0 {
		t.Fatalf("before any connection: %v %v", d, err)
	}
	// Our own connection is not a bypass.
	own, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	c := <-accepted
	defer c.Close()
	if d, err := directConns(ports); err != nil || len(d) != 0 {
		t.Fatalf("own connection reported as a bypass: %v %v", d, err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	cmd := exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; sleep 3", port))
	if err := cmd.Start(); err != nil {
		t.Skipf("no bash to open a foreign connection: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("the child did not connect")
	}
	d, err := directConns(ports)
	if err != nil || len(d) != 1 {
		t.Fatalf("want one foreign connection, got %v %v", d, err)
	}
}

// addrBookLeaks reads a node's CometBFT address book (written at a clean
// stop) and lists what PEX taught it beyond its own proxy addresses (own):
// self, its own ID at another node's proxy port, which is harmless (a
// dial to it is refused as a connection to self); and leaks, another node's
// ID at any port but this node's own proxies, a route around a partition.
func addrBookLeaks(home, selfID string, own map[int]bool) (entries int, self, leaks []string, err error) {
	b, err := os.ReadFile(home + "/config/addrbook.json")
	if err != nil {
		return 0, nil, nil, err
	}
	var book struct {
		Addrs []struct {
			Addr struct {
				ID   string `json:"id"`
				IP   string `json:"ip"`
				Port int    `json:"port"`
			} `json:"addr"`
		} `json:"addrs"`
	}
	if err := json.Unmarshal(b, &book); err != nil {
		return 0, nil, nil, err
	}
	for _, a := range book.Addrs {
		s := fmt.Sprintf("%s@%s:%d", a.Addr.ID, a.Addr.IP, a.Addr.Port)
		switch {
		case a.Addr.ID == selfID:
			self = append(self, s)
		case !own[a.Addr.Port]:
			leaks = append(leaks, s)
		}
	}
	return len(book.Addrs), self, leaks, nil
}
