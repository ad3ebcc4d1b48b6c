package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// readStream posts req to path and reads the NDJSON frames of a long
// operation (bench, import, quantize, pull): each frame holds one of
// progressKey (handed to onProgress, which may be nil), "result" (the
// answer) or "error". Ending ctx stops reading.
func readStream[P, R any](ctx context.Context, c *Client, path, progressKey string, req any, onProgress func(P)) (R, error) {
	var zero R
	resp, err := c.send(ctx, "POST", path, req)
	if err != nil {
		return zero, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return zero, readError(resp)
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var f map[string]json.RawMessage
		if err := dec.Decode(&f); err != nil {
			if ctx.Err() != nil {
				return zero, ctx.Err()
			}
			return zero, fmt.Errorf("%s: stream ended early: %w", path, err)
		}
		if raw, ok := f["error"]; ok && string(raw) != "null" {
			var e Error
			if err := json.Unmarshal(raw, &e); err != nil {
				return zero, fmt.Errorf("%s: bad error frame: %w", path, err)
			}
			return zero, &APIError{Status: statusOf(&e), Code: e.Code, Message: e.Message}
		}
		if raw, ok := f["result"]; ok && string(raw) != "null" {
			var r R
			if err := json.Unmarshal(raw, &r); err != nil {
				return zero, fmt.Errorf("%s: bad result frame: %w", path, err)
			}
			return r, nil
		}
		if raw, ok := f[progressKey]; ok && onProgress != nil {
			var p P
			if err := json.Unmarshal(raw, &p); err != nil {
				return zero, fmt.Errorf("%s: bad %s frame: %w", path, progressKey, err)
			}
			onProgress(p)
		}
	}
}
