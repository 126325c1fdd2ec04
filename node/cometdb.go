package node

import (
	"sync"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// DBProvider is CometBFT's default database provider with every database
// (block store, state, evidence, index) wrapped in a closeSafeDB. Pass it
// wherever a CometBFT node is built in process.
func DBProvider(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	db, err := cmtcfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	return &closeSafeDB{DB: db}, nil
}

// closeSafeDB answers a read after Close with "not there" instead of an
// error. CometBFT closes its block store as soon as its peer-to-peer switch
// has stopped, while each peer's consensus goroutine (queryMaj23Routine) may
// still be asleep in mid-loop; it then reads the closed store and panics on
// the error ("leveldb: closed", a known CometBFT shutdown race), taking the
// process with it. Only such goroutines on their way out read after Close,
// so an empty answer is safe; a read in flight finishes before Close
// closes the database.
type closeSafeDB struct {
	dbm.DB
	mu     sync.RWMutex
	closed bool
}

func (d *closeSafeDB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, nil
	}
	return d.DB.Get(key)
}

func (d *closeSafeDB) Has(key []byte) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, nil
	}
	return d.DB.Has(key)
}

func (d *closeSafeDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.DB.Close()
}
