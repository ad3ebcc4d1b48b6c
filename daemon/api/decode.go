package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// decodeBody reads one JSON object from the request body into v. strict
// refuses fields that v does not have (the seed endpoints, where a typo such
// as "max_token" would otherwise be silently ignored); the OpenAI endpoints
// are lenient because their clients send many optional fields.
func decodeBody(r *http.Request, v any, strict bool) *Error {
	// The body is JSON whatever the header says (curl -d sends form
	// encoding); guard has refused the Content-Types a browser form sends.
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err, v)
		}
		return badRequest("", "the body must hold exactly one JSON object; there is more after it")
	}
	return nil
}

// checker is a request body that validates itself.
type checker interface{ check() *Error }

// decodeChecked decodes the body into req and validates it. On a mistake
// it answers the error and returns false.
func decodeChecked(w http.ResponseWriter, r *http.Request, req checker, strict bool) bool {
	e := decodeBody(r, req, strict)
	if e == nil {
		e = req.check()
	}
	if e != nil {
		writeError(w, e)
		return false
	}
	return true
}

// decodeRaw decodes one JSON value (a batch entry) strictly.
func decodeRaw(raw []byte, v any, strict bool) *Error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	return nil
}

// jsonError turns a decoding error of the body into v into a 400 that
// names the field as the client wrote it.
func jsonError(err error, v any) *Error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
		ae  *Error
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.Is(err, io.EOF):
		return badRequest("", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &syn):
		return badRequest("", "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := jsonPath(reflect.TypeOf(v), typ.Field)
		if field == "" {
			return badRequest("", "the body must be a JSON object, not %s", typ.Value)
		}
		want := typeName(typ.Type.String())
		if want == "a number" && strings.HasPrefix(typ.Value, "number") {
			return badRequest(field, "field %q: %s is out of range or not a whole number", field, strings.TrimPrefix(typ.Value, "number "))
		}
		return badRequest(field, "field %q must be %s, not %s", field, want, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return badRequest(strings.Trim(name, `"`), "unknown field %s; see the API documentation for the accepted fields", name)
	default:
		return badRequest("", "invalid JSON: %v", err)
	}
}

func typeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.HasPrefix(goType, "[]"), strings.HasPrefix(goType, "*[]"):
		return "an array"
	default:
		return "an object"
	}
}

// jsonPath rewrites encoding/json's path of a field ("openaiCommon.
// sampleFields.max_tokens") into the client's ("max_tokens"): the decoder
// puts the Go names of embedded structs into the path, which mean nothing
// to the client.
func jsonPath(t reflect.Type, path string) string {
	if path == "" {
		return ""
	}
	var out []string
	for _, seg := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			out = append(out, seg)
			t = nil
			continue
		}
		next := reflect.Type(nil)
		embedded := false
		for _, f := range reflect.VisibleFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous && name == "" && f.Name == seg:
				next, embedded = f.Type, true
			case f.IsExported() && (name == seg || name == "" && strings.EqualFold(f.Name, seg)):
				if next == nil {
					next = f.Type
				}
			}
			if embedded {
				break
			}
		}
		t = next
		if !embedded {
			out = append(out, seg)
		}
	}
	return strings.Join(out, ".")
}
