/* Test-only stand-in for Windows 10's bcryptprimitives.dll, for a Wine 8 prefix.
 *
 * The Go runtime (1.26 here; Go supports only Windows 10 and later) takes its random bytes from
 * bcryptprimitives.dll's ProcessPrng, which Wine 8 does not have: without it a Go program
 * dies at start-up. This DLL exports ProcessPrng over advapi32's RtlGenRandom
 * (SystemFunction036), which Wine has. scripts/test-windows-go.sh builds it into the private
 * prefix's system32 of its Go tests; it is never part of what the project ships, and nothing
 * shipped needs it (capmonster.dll targets Windows 7 and imports no bcryptprimitives). */
#include <windows.h>

/* RtlGenRandom: exported by advapi32 under this name; declared here since <ntsecapi.h>
 * needs more of the SDK than this file does. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Windows 10's signature; it always returns TRUE there (it cannot fail), so this one
 * returns FALSE only if RtlGenRandom does. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size) {
    /* RtlGenRandom takes a ULONG length: larger requests go in 1 GiB pieces, so the loop
     * runs at most size / 1 GiB + 1 times. */
    const SIZE_T piece = (SIZE_T)1 << 30;
    while (size > 0) {
        ULONG n = (ULONG)(size < piece ? size : piece);
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        size -= n;
    }
    return TRUE;
}
