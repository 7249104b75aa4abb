package capmonster

// LiveHandles counts the library clients the package holds: the tests check that closing,
// the finalizer and the short-lived clients of deadline-bound calls free them.
func LiveHandles() int64 { return liveHandles.Load() }
