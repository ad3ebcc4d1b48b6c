package admin

import "testing"

// TestForbiddenIsTheCredentialsRefusal: only the daemon's own refusal of
// the caller is "forbidden"; a 403 of another code (a gated repo refusing
// a pull) is an ordinary failure of the operation.
func TestForbiddenIsTheCredentialsRefusal(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		want   bool
	}{
		{403, CodeForbidden, true},
		{403, "", true},
		{403, "gated", false},
		{404, CodeForbidden, false},
	} {
		if got := (&APIError{Status: c.status, Code: c.code}).Forbidden(); got != c.want {
			t.Errorf("status %d code %q: Forbidden() = %v, want %v", c.status, c.code, got, c.want)
		}
	}
}
