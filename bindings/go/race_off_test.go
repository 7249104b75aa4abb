//go:build !race

package capmonster_test

// How many WaitResult calls TestManyWaitsAtOnce makes at once (bench/go runs 100,000).
const manyWaits = 10_000
