//go:build race

package capmonster_test

// The race detector allows at most 8128 goroutines at once.
const manyWaits = 2_000
