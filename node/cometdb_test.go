package node

import (
	"sync"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
)

// TestCloseSafeDB checks that reads after Close, and reads racing it, get
// "not there" rather than the closed database's error, on the LevelDB
// backend whose error CometBFT panics on.
func TestCloseSafeDB(t *testing.T) {
	ldb, err := dbm.NewGoLevelDB("blockstore", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ldb.Get([]byte("k")); err != nil {
		t.Fatal(err)
	}
	d := &closeSafeDB{DB: ldb}
	if err := d.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get before Close = %q, %v", v, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				if _, err := d.Get([]byte("k")); err != nil {
					errs <- err
					return
				}
				if _, err := d.Has([]byte("k")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("read racing Close: %v", err)
	}
	if v, err := d.Get([]byte("k")); err != nil || v != nil {
		t.Errorf("Get after Close = %q, %v; want nothing, no error", v, err)
	}
	if ok, err := d.Has([]byte("k")); err != nil || ok {
		t.Errorf("Has after Close = %v, %v; want false, no error", ok, err)
	}
	if _, err := ldb.Get([]byte("k")); err == nil {
		t.Error("the LevelDB underneath is still open")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
