package capmonster

// LiveHandles and LiveWaiters count the library clients and waiters the package holds: the
// tests check that Close and the cleanup of an unreachable Client free them.
func LiveHandles() int64 { return liveHandles.Load() }

func LiveWaiters() int64 { return liveWaiters.Load() }
