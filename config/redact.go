package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// hidden stands for what RedactURL hides.
const hidden = "xxxxx"

// RedactURL returns raw with everything that could be a credential hidden,
// without parsing it: parsers disagree on where a password with an
// unencoded @, : or / ends (pgconn ends the user info at the first @,
// net/url at the last), so this hides the union of what any of them could
// take for one. Everything between the scheme and the last @ becomes xxxxx,
// and so does everything after a password= or sslpassword= parameter.
//
//	postgres://app:P@ss@db:5432/app?sslmode=disable -> postgres://xxxxx@db:5432/app?sslmode=disable
//
// It is what config prints; dbmodule describes a connection from pgx's
// parse of it instead (host, port, database, user).
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(not a URL, not shown)"
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = hidden + rest[at:]
	}
	lower := strings.ToLower(rest)
	for _, key := range []string{"password=", "sslpassword="} {
		// A parameter name is at the start of the query or after an &.
		for i := 0; ; {
			j := strings.Index(lower[i:], key)
			if j < 0 {
				break
			}
			j += i
			if j > 0 && (lower[j-1] == '?' || lower[j-1] == '&') {
				return scheme + "://" + rest[:j+len(key)] + hidden
			}
			i = j + len(key)
		}
	}
	return scheme + "://" + rest
}

// String describes c with its URLs redacted by RedactURL, so that printing
// a DB with %v, %+v or %s never shows a password.
func (c DB) String() string {
	return fmt.Sprintf("%+v", c.redacted())
}

// GoString is String, for %#v.
func (c DB) GoString() string { return "config.DB" + c.String() }

// MarshalJSON encodes c with its URLs redacted, for encoding/json and for
// zap.Reflect.
func (c DB) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.redacted())
	if err != nil {
		return nil, fmt.Errorf("encode database config: %w", err)
	}
	return b, nil
}

// MarshalLogObject encodes c for zap.Object, with its URLs redacted, a
// field for each of DB's fields.
func (c DB) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	v := reflect.ValueOf(c.redacted())
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, v.Field(i)
		switch x := f.Interface().(type) {
		case string:
			enc.AddString(name, x)
		case bool:
			enc.AddBool(name, x)
		case int32:
			enc.AddInt32(name, x)
		case time.Duration:
			enc.AddDuration(name, x)
		default:
			if err := enc.AddReflected(name, x); err != nil {
				return fmt.Errorf("encode database config: %w", err)
			}
		}
	}
	return nil
}

// redactedDB has DB's fields and none of its methods, so that encoding it
// does not recurse.
type redactedDB DB

func (c DB) redacted() redactedDB {
	c.URL, c.DirectURL, c.ReadURL = RedactURL(c.URL), RedactURL(c.DirectURL), RedactURL(c.ReadURL)
	return redactedDB(c)
}
