package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// ack is one acknowledged write: the node answered with a committed result
// (code 0) and its height. It is what must never be lost.
type ack struct {
	want   actorInfo // the actor as it must read back (nonce aside)
	node   int       // where it was submitted
	phase  string
	key    ident.Private
	ackAt  time.Time
	signer string
}

// load is the steady, bounded load: one writer goroutine registering
// organizations (signed by the network admin) and members (signed by an
// acknowledged organization), round-robin over the live nodes; one reader
// goroutine checking acknowledged actors at random live nodes.
type load struct {
	t     *testing.T
	apis  []string
	live  func(i int) bool
	admin ident.Private
	// clients[w][i] is writer w's client of node i: a client.Client is
	// not safe for concurrent use (it caches the chain ID unguarded).
	clients [][]*client.Client
	timeout time.Duration // per write
	pace    time.Duration // pause between writes

	adminMu    sync.Mutex // one admin-signed write at a time
	mu         sync.Mutex
	acks       []ack
	phase      string
	attempts   int
	failures   map[string]int // unacknowledged writes by reason
	readChecks int
	readErrors int
	readLog    []string

	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoad(t *testing.T, apis []string, live func(int) bool, admin ident.Private) *load {
	l := &load{t: t, apis: apis, live: live, admin: admin, timeout: 8 * time.Second, pace: 50 * time.Millisecond,
		failures: map[string]int{}, stop: make(chan struct{}), phase: "warm-up"}
	return l
}

// halt stops both goroutines and waits (bounded by a write timeout).
func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) currentPhase() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase
}

func (l *load) setPhase(p string) {
	l.mu.Lock()
	l.phase = p
	l.mu.Unlock()
}

// snapshot returns a copy of the acknowledged writes so far.
func (l *load) snapshot() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}

func (l *load) counts() (acked, readErrors int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks), l.readErrors
}

var roles = []string{"physician", "nurse", "pharmacist", "researcher", "staff"}

// start runs the writers and the reader until halt or deadline. Writer 0
// signs with the network admin (organizations) and with the organizations
// it registered (members); each further writer signs only with its own
// organization, registered first: no two writers share a signer, so
// their nonces never race.
func (l *load) start(deadline time.Time, writers int) {
	for range writers {
		var cs []*client.Client
		for _, a := range l.apis {
			cs = append(cs, client.New(a))
		}
		l.clients = append(l.clients, cs)
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.reader(deadline) }()
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.writer(0, deadline, nil) }()
	for w := 1; w < writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			// Registered by writer 0's signer, so serialize on it.
			l.adminMu.Lock()
			org, ok := l.write(w, w, -1, nil)
			l.adminMu.Unlock()
			for !ok && !l.stopped() && time.Now().Before(deadline) {
				l.sleep(500 * time.Millisecond)
				l.adminMu.Lock()
				org, ok = l.write(w, w, -1, nil)
				l.adminMu.Unlock()
			}
			if ok {
				l.writer(w, deadline, &org)
			}
		}()
	}
}

// next picks the next live node round-robin, -1 if none.
func (l *load) next(rr *int) int {
	for range len(l.apis) {
		*rr++
		if i := *rr % len(l.apis); l.live(i) {
			return i
		}
	}
	return -1
}

// writer w writes until halt or deadline. With own set it writes members
// of that organization only.
func (l *load) writer(w int, deadline time.Time, own *ack) {
	rr := w
	var mine []ack // organizations writer 0 registered
	for n := 0; !l.stopped() && time.Now().Before(deadline); n++ {
		idx := l.next(&rr)
		if idx < 0 {
			l.sleep(100 * time.Millisecond)
			continue
		}
		var org *ack
		switch {
		case own != nil:
			org = own
		case n%2 == 1 && len(mine) > 0:
			a := mine[rand.IntN(len(mine))]
			org = &a
		}
		if org != nil {
			// The node must already know the organization.
			if st, err := getStatus(l.apis[idx]); err != nil || st.Height < org.want.Height {
				if own != nil {
					l.sleep(100 * time.Millisecond)
					continue
				}
				org = nil
			}
		}
		if org == nil {
			l.adminMu.Lock()
		}
		a, ok := l.write(w, n, idx, org)
		if org == nil {
			l.adminMu.Unlock()
		}
		if ok && a.want.Kind == "org" {
			mine = append(mine, a)
		}
		l.sleep(l.pace)
	}
}

// write submits one registration at node idx (-1: the next live one): a
// member of org, or with org nil an organization signed by the admin. It
// records the write if acknowledged.
func (l *load) write(w, n, idx int, org *ack) (ack, bool) {
	if idx < 0 {
		rr := rand.IntN(len(l.apis))
		if idx = l.next(&rr); idx < 0 {
			return ack{}, false
		}
	}
	key, err := ident.Generate()
	if err != nil {
		l.t.Errorf("generate key: %v", err)
		return ack{}, false
	}
	want := actorInfo{ID: key.ID(), Public: key.Public().String()}
	var typ tx.Type
	var body any
	signer := l.admin
	if org != nil {
		want.Kind, want.Role, want.Org = "member", roles[n%len(roles)], org.want.ID
		typ, body, signer = tx.TypeMemberAdd, tx.MemberAdd{Public: want.Public, Role: want.Role}, org.key
	} else {
		want.Kind, want.Name = "org", "Faults Org "+key.ID()[3:11]
		typ, body = tx.TypeOrgAdd, tx.OrgAdd{Public: want.Public, Name: want.Name}
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	res, err := l.clients[w][idx].Send(ctx, signer, typ, body)
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts++
	switch {
	case err == nil && res.Code == 0 && res.Height > 0:
		want.Height = res.Height
		a := ack{want: want, node: idx, phase: l.phase, key: key, ackAt: time.Now(), signer: signer.ID()}
		l.acks = append(l.acks, a)
		return a, true
	case err == nil:
		l.failures[fmt.Sprintf("code %d", res.Code)]++
	default:
		l.failures[failureReason(err)]++
	}
	return ack{}, false
}

func failureReason(err error) string {
	var ce *client.Error
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("HTTP %d code %d", ce.Status, ce.Code)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded"):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset by peer"):
		return "connection dropped"
	}
	return "other"
}

func (l *load) sleep(d time.Duration) {
	select {
	case <-l.stop:
	case <-time.After(d):
	}
}

// reader checks acknowledged actors at random live nodes: a node whose
// committed height is at or past the write's height must serve it, byte for
// byte as written.
func (l *load) reader(deadline time.Time) {
	for !l.stopped() && time.Now().Before(deadline) {
		l.sleep(150 * time.Millisecond)
		l.mu.Lock()
		if len(l.acks) == 0 {
			l.mu.Unlock()
			continue
		}
		a := l.acks[rand.IntN(len(l.acks))]
		l.mu.Unlock()
		i := rand.IntN(len(l.apis))
		if !l.live(i) {
			continue
		}
		st, err := getStatus(l.apis[i])
		if err != nil || st.Height < a.want.Height {
			continue
		}
		got, found, err := getActor(l.apis[i], a.want.ID)
		if err != nil {
			continue // node going down: not a verdict
		}
		l.mu.Lock()
		l.readChecks++
		if msg := mismatch(a.want, got, found); msg != "" {
			l.readErrors++
			if len(l.readLog) < 20 {
				l.readLog = append(l.readLog, fmt.Sprintf("reader: node%d at height %d: %s", i, st.Height, msg))
			}
		}
		l.mu.Unlock()
	}
}

// mismatch compares an actor as read with the acknowledged write.
func mismatch(want, got actorInfo, found bool) string {
	if !found {
		return fmt.Sprintf("acknowledged %s %s (height %d) is not found", want.Kind, want.ID, want.Height)
	}
	got.Nonce = 0
	if got != want {
		return fmt.Sprintf("acknowledged %s reads back as %+v, want %+v", want.ID, got, want)
	}
	return ""
}

// checkAll waits until every node in nodes has reached the highest
// acknowledged height, then reads every acknowledged write at every one of
// them. It returns the number of acknowledged writes missing or different
// on some node, and messages for the first few.
func (l *load) checkAll(nodes []int, wait time.Duration) (lost int, msgs []string) {
	acks := l.snapshot()
	var top int64
	for _, a := range acks {
		top = max(top, a.want.Height)
	}
	for _, i := range nodes {
		info, ok := poll(wait, func() (bool, string) {
			st, err := getStatus(l.apis[i])
			if err != nil {
				return false, err.Error()
			}
			return st.Height >= top, fmt.Sprintf("height %d", st.Height)
		})
		if !ok {
			msgs = append(msgs, fmt.Sprintf("node%d did not reach height %d within %s (last: %s)", i, top, wait, info))
		}
	}
	bad := map[string]bool{}
	for _, i := range nodes {
		for _, a := range acks {
			var got actorInfo
			var found bool
			var err error
			for try := 0; try < 3; try++ { // a transport error is retried, a 404 is not
				if got, found, err = getActor(l.apis[i], a.want.ID); err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				msgs = append(msgs, fmt.Sprintf("node%d: read %s: %v", i, a.want.ID, err))
				bad[a.want.ID] = true
				continue
			}
			if m := mismatch(a.want, got, found); m != "" {
				bad[a.want.ID] = true
				if len(msgs) < 20 {
					msgs = append(msgs, fmt.Sprintf("node%d: %s (acknowledged by node%d in %s)", i, m, a.node, a.phase))
				}
			}
		}
	}
	return len(bad), msgs
}

// failureSummary renders the unacknowledged writes by reason.
func (l *load) failureSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ks []string
	for k, v := range l.failures {
		ks = append(ks, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(ks)
	return fmt.Sprintf("%d attempts, %d acknowledged, unacknowledged {%s}, %d reader checks, %d reader errors",
		l.attempts, len(l.acks), strings.Join(ks, ", "), l.readChecks, l.readErrors)
}
