package capmonster

// LiveHandles and LiveWaiters count the library clients and waiters the package holds: the
// tests check that Close and the cleanup of an unreachable Client free them.
func LiveHandles() int64 { return liveHandles.Load() }

func LiveWaiters() int64 { return liveWaiters.Load() }

// Glossary is the library's error glossary (cm_api_error_glossary).
func Glossary() []string { return glossary() }

// APISentinels are the sentinels of the service's errors, for the test that they cover the
// library's glossary.
var APISentinels = []error{
	ErrKeyDoesNotExist, ErrZeroBalance, ErrTooBigCaptchaFilesize, ErrZeroCaptchaFilesize, ErrNoSuchTask,
	ErrCaptchaUnsolvable, ErrIPNotAllowed, ErrIPBanned, ErrNoSuchMethod, ErrTooMuchRequests,
	ErrDomainNotAllowed, ErrTokenExpired, ErrNoSlotAvailable, ErrRecaptchaInvalidSitekey,
	ErrRecaptchaInvalidDomain, ErrRecaptchaTimeout, ErrIPBlocked, ErrProxyConnectRefused, ErrProxyBanned,
	ErrProxyMissing, ErrProxyNotAuthorised, ErrProxyReadTimeout, ErrTaskNotSupported, ErrTaskAbsent,
	ErrWrongUserAgent,
}

// PendingWaits counts the waits and solves of c added to its waiter and not yet out.
func PendingWaits(c *Client) int {
	c.s.waiter.mu.Lock()
	defer c.s.waiter.mu.Unlock()
	return len(c.s.waiter.waits)
}
