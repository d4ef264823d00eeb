// test_check.c: the test harness itself. CHECK_CLOSE must fail on every mismatch, including
// the non-finite ones (a NaN or infinite reference value once passed whatever the result), and
// must pass on equal values. The expected failures below print "FAIL" lines of their own; the
// verdict is the summary line and the exit status.
#include "check.h"

#include <math.h>

// Runs one comparison and takes its outcome back out of the failure count, so that an expected
// failure does not fail this test. Returns 1 if CHECK_CLOSE accepted got.
static int accepts(float got, float want) {
    int before = check_failures;
    int ok = check_close_impl(__FILE__, __LINE__, "probe", &got, &want, 1, 1e-6, 1e-6);
    check_failures = before;
    check_count--;
    return ok;
}

int main(void) {
    const float inf = INFINITY, nan = NAN;
    fprintf(stderr, "test_check: the FAIL lines up to the summary are expected probes\n");

    // Same non-finite value: accepted.
    CHECK(accepts(nan, nan), "NaN vs NaN");
    CHECK(accepts(inf, inf), "+inf vs +inf");
    CHECK(accepts(-inf, -inf), "-inf vs -inf");

    // Non-finite reference, different result: rejected.
    CHECK(!accepts(1.0f, nan), "finite vs NaN reference");
    CHECK(!accepts(inf, nan), "+inf vs NaN reference");
    CHECK(!accepts(1.0f, inf), "finite vs +inf reference");
    CHECK(!accepts(-inf, inf), "-inf vs +inf reference");
    CHECK(!accepts(nan, inf), "NaN vs +inf reference");
    CHECK(!accepts(3e38f, -inf), "large finite vs -inf reference");

    // Non-finite result, finite reference: rejected.
    CHECK(!accepts(nan, 1.0f), "NaN vs finite reference");
    CHECK(!accepts(inf, 1.0f), "+inf vs finite reference");

    // Finite values: the tolerance decides.
    CHECK(accepts(1.0f, 1.0f), "equal");
    CHECK(accepts(1.0f + 1e-7f, 1.0f), "within tolerance");
    CHECK(!accepts(1.001f, 1.0f), "outside tolerance");

    // The worst element is found anywhere in an array, not only at index 0.
    {
        float want[4] = {0, 1, inf, 3}, got[4] = {0, 1, inf, 3};
        int before = check_failures;
        CHECK(check_close_impl(__FILE__, __LINE__, "array equal", got, want, 4, 0, 0), "equal arrays");
        got[2] = 2;
        int ok = check_close_impl(__FILE__, __LINE__, "array probe", got, want, 4, 0, 0);
        check_failures = before;
        check_count--;
        CHECK(!ok, "array with a finite value where the reference is +inf");
    }
    CHECK_DONE();
}
