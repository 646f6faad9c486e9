package mgmtapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// etag is the strong entity tag of a representation: a digest of its
// JSON, which lists in a fixed order, so that equal content has equal
// tags on every server.
func etag(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the API's own types always marshal
	}
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// matches reports whether an If-Match or If-None-Match field value lists
// tag, or is "*" with a resource present (RFC 9110 sections 13.1.1 and
// 13.1.2). A weak tag never matches: If-Match compares strongly.
func matches(field, tag string, present bool) bool {
	for _, t := range strings.Split(field, ",") {
		t = strings.TrimSpace(t)
		if t == "*" && present || present && t == tag {
			return true
		}
	}
	return false
}

// errPrecondition is a precondition that failed.
var errPrecondition = errors.New("precondition")

// preconditions checks a write's If-Match and If-None-Match against the
// resource as it is (current nil when absent). A write that replaces or
// deletes a resource must say which version it read (If-Match): without
// it two writers could overwrite each other unseen, so it is refused with
// 428 (RFC 6585 section 3). "If-Match: *" says any version will do.
func preconditions(r *http.Request, current any) *Problem {
	present := current != nil
	tag := ""
	if present {
		tag = etag(current)
	}
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	switch {
	case im != "" && !matches(im, tag, present):
		if !present {
			return preconditionFailed("it does not exist")
		}
		return preconditionFailed("it has changed since it was read: its ETag is now " + tag)
	case inm != "" && matches(inm, tag, present):
		return preconditionFailed("it exists: its ETag is " + tag)
	case present && im == "":
		return preconditionRequired("send If-Match with the ETag of the version this request changes (or *, for any)")
	}
	return nil
}
