package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestTestnetSurvivesOneFailure: four validators keep committing with one
// down; the one that was down catches up and sees what it missed.
func TestTestnetSurvivesOneFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four nodes; skipped with -short")
	}
	const V = 4
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "net")
	base := freeBase(t, V)
	tn := e.json("testnet", "--validators", fmt.Sprint(V), "--out", out, "--base-port", fmt.Sprint(base))
	list, ok := tn["nodes"].([]any)
	if !ok || len(list) != V {
		t.Fatalf("testnet JSON: want %d nodes: %v", V, tn)
	}
	e.keyring = filepath.Join(out, "keyring")
	nodes := make([]*proc, V)
	for i, x := range list {
		m, _ := x.(map[string]any)
		hasKeys(t, "testnet node", m, "home", "api")
		home, api := str(t, m, "home"), str(t, m, "api")
		if want := fmt.Sprintf("http://127.0.0.1:%d", base+10*i+2); api != want {
			t.Errorf("node%d api %s, want %s", i, api, want)
		}
		if want := filepath.Join(out, fmt.Sprintf("node%d", i)); home != want {
			t.Errorf("node%d home %s, want %s", i, home, want)
		}
		nodes[i] = &proc{name: fmt.Sprintf("node%d", i), home: home, api: api}
	}
	for i, p := range nodes {
		nodes[i] = e.startNode(p.name, p.home, p.api)
	}

	// All at the same height ≥ 3, each with ≥ 2 peers.
	waitFor(t, 90*time.Second, "all nodes at one height ≥ 3 with ≥ 2 peers", func() (bool, string) {
		var hs []int64
		var info string
		good := true
		for _, p := range nodes {
			if !p.Running() {
				t.Fatalf("%s exited: %v\n%s", p.name, p.Err(), tailFile(p.log, 30))
			}
			st, err := getStatus(p.api)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", p.name, err)
			}
			info += fmt.Sprintf("%s h=%d peers=%d; ", p.name, st.Height, st.Peers)
			hs = append(hs, st.Height)
			good = good && st.Height >= 3 && st.Peers >= 2 && st.Validators == V
		}
		for _, h := range hs {
			good = good && h == hs[0]
		}
		return good, info
	})

	// Register an org through node0.
	e.node = nodes[0].api
	e.json("keys", "new", "org1")
	org := e.json("org", "add", "--as", "admin", "--key", "org1", "--name", "Org One")
	orgID := str(t, org, "id")

	// Crash node3; the other three keep committing.
	nodes[3].kill9()
	h0 := nodes[0].status().Height
	nodes[0].waitHeight(h0+3, 60*time.Second)

	// A transaction submitted at node1 commits while node3 is down.
	e.node = nodes[1].api
	e.json("keys", "new", "org2")
	org2 := e.json("org", "add", "--as", "admin", "--key", "org2", "--name", "Org Two")
	org2ID := str(t, org2, "id")
	e.json("keys", "new", "m1")
	mem := e.json("member", "add", "--as", "org2", "--key", "m1", "--role", "nurse")
	memID := str(t, mem, "id")
	for _, p := range nodes[:3] {
		waitFor(t, 20*time.Second, p.name+" to see org2 and m1", func() (bool, string) {
			_, a := actor(t, p.api, org2ID)
			_, b := actor(t, p.api, memID)
			return a && b, ""
		})
	}

	// Restart node3: it catches up and sees what it missed.
	nodes[3] = e.startNode("node3-restarted", nodes[3].home, nodes[3].api)
	waitFor(t, 60*time.Second, "node3 to catch up within 2 of node0", func() (bool, string) {
		if !nodes[3].Running() {
			t.Fatalf("node3 exited after restart: %v\n%s", nodes[3].Err(), tailFile(nodes[3].log, 30))
		}
		s3, err := getStatus(nodes[3].api)
		if err != nil {
			return false, err.Error()
		}
		s0 := nodes[0].status()
		return s3.Height >= s0.Height-2 && s3.Height > h0+3, fmt.Sprintf("node0 %d node3 %d", s0.Height, s3.Height)
	})
	// Within 2 of node0 may still lie below the last of those commits.
	nodes[3].waitHeight(max(num(t, org, "height"), num(t, org2, "height"), num(t, mem, "height")), 30*time.Second)
	for _, id := range []string{orgID, org2ID, memID} {
		if _, ok := actor(t, nodes[3].api, id); !ok {
			t.Errorf("node3 after catching up (height %d) does not know %s", nodes[3].status().Height, id)
		}
	}
	// node3 keeps up and takes part: a transaction submitted at node3.
	e.node = nodes[3].api
	e.json("keys", "new", "m3")
	m3 := e.json("member", "add", "--as", "org1", "--key", "m3", "--role", "staff")
	for _, p := range nodes {
		waitFor(t, 20*time.Second, p.name+" to see m3", func() (bool, string) {
			_, ok := actor(t, p.api, str(t, m3, "id"))
			return ok, ""
		})
	}

	// App hashes agree at common heights. Status reads height and app hash
	// separately, so only a reading that two back-to-back calls agree on
	// counts.
	stable := func(p *proc) (status, bool) {
		a, err1 := getStatus(p.api)
		b, err2 := getStatus(p.api)
		return a, err1 == nil && err2 == nil && a == b
	}
	seen := make([]map[int64]string, V)
	for i := range seen {
		seen[i] = map[int64]string{}
	}
	matched := make([]bool, V)
	matched[0] = true
	waitFor(t, 30*time.Second, "every node to share a height with node0", func() (bool, string) {
		for i, p := range nodes {
			if st, ok := stable(p); ok {
				seen[i][st.Height] = st.AppHash
			}
		}
		all := true
		for i := 1; i < V; i++ {
			for h, hash := range seen[i] {
				if want, ok := seen[0][h]; ok {
					if want != hash {
						t.Fatalf("app hash at height %d: node0 %s, node%d %s", h, want, i, hash)
					}
					matched[i] = true
				}
			}
			all = all && matched[i]
		}
		return all, fmt.Sprintf("matched %v", matched)
	})

	for _, p := range nodes {
		p.stop()
	}
	for _, p := range nodes {
		v := e.json("verify", "--home", p.home)
		if v["ok"] != true || num(t, v, "blocks") < 5 {
			t.Errorf("verify %s: %v", p.name, v)
		}
	}
}
