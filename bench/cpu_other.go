//go:build !unix

package bench

// processUsage is not measured on this platform.
func processUsage() (usage, bool) { return usage{}, false }
