//go:build !linux

package hugeheap

// Mode returns "never": only Linux has transparent huge pages to ask for.
func Mode() (string, error) { return "never", nil }

// An Advisor marks the process's heaps for huge pages; there are none
// to ask for here.
type Advisor struct{}

// NewAdvisor returns ErrNotAdvisable: only Linux has transparent huge
// pages to ask for.
func NewAdvisor() (*Advisor, error) { return nil, ErrNotAdvisable }

// Advise does nothing.
func (a *Advisor) Advise() (uint64, error) { return 0, ErrNotAdvisable }
