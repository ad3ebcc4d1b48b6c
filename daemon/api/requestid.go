package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Request IDs tie a request's log lines together (the journal's REQUEST_ID
// field) and to what the client saw (the X-Request-Id header of every
// answer). A client's own X-Request-Id is kept when it is a short token.

type requestIDKey struct{}

// RequestID is the ID of the request ctx belongs to; "" outside one.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives r an ID, sets the answer's X-Request-Id and returns
// the request carrying it.
func withRequestID(w http.ResponseWriter, r *http.Request) (*http.Request, string) {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)), id
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
