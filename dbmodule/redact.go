package dbmodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fxpg/fxpg/config"
)

// encodeHint says how to write a URL that every parser reads the same way.
const encodeHint = "percent-encode @ as %40 (and : / ? # % & likewise) in the user name and password"

// parseURL parses the URL in the variable with pgconn, the parser that
// connects. It first refuses a URL whose credentials parsers read
// differently: pgconn ends the user info at the first @, net/url (and
// people) at the last, so with an unencoded @ in the password the rest of
// it would become the host and be printed wherever the host is. Its errors
// name the variable and never show any part of the URL that could hold a
// password.
func parseURL(variable, raw string) (*pgconn.Config, error) {
	bad := func(err error) error { return &config.VarError{Var: variable, Err: err} }
	if strings.TrimSpace(raw) != raw {
		return nil, bad(errors.New("has leading or trailing white space"))
	}
	if strings.ContainsFunc(raw, unicode.IsControl) {
		return nil, bad(errors.New("contains a control character"))
	}
	_, rest, ok := strings.Cut(raw, "://")
	if !ok || (!strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://")) {
		return nil, bad(errors.New("must start with postgres:// or postgresql://"))
	}
	if n := strings.Count(rest, "@"); n > 1 {
		return nil, bad(fmt.Errorf("has %d unencoded @ signs, so where the password ends is ambiguous: %s", n, encodeHint))
	} else if n == 1 && strings.IndexAny(rest, "@/") != strings.IndexByte(rest, '@') {
		return nil, bad(errors.New("has an @ after the host, most likely ending a password that holds an unencoded /: " + encodeHint))
	}
	cc, err := pgconn.ParseConfig(raw)
	if err != nil {
		return nil, bad(errors.New(RedactSecrets(parseReason(err), raw) + "; " + encodeHint))
	}
	for _, h := range hostsOf(cc) {
		if strings.ContainsAny(h, "@") {
			// An encoded @ in the host: not a host name, and not shown.
			return nil, bad(errors.New("has an @ in a host name: " + encodeHint))
		}
	}
	return cc, nil
}

// hostsOf lists the hosts a connection may go to.
func hostsOf(cc *pgconn.Config) []string {
	hosts := []string{cc.Host}
	for _, f := range cc.Fallbacks {
		if !slices.Contains(hosts, f.Host) {
			hosts = append(hosts, f.Host)
		}
	}
	return hosts
}

// parseReason is why pgx refused a connection string, without the string:
// pgconn's ParseConfigError quotes it, redacted only on a best-effort basis.
func parseReason(err error) string {
	var pce *pgconn.ParseConfigError
	if !errors.As(err, &pce) {
		return err.Error()
	}
	prefix := pgconn.NewParseConfigError(pce.ConnString, "", nil).Error()
	return strings.TrimPrefix(pce.Error(), prefix)
}

// minSecretLen is the shortest password RedactSecrets hunts for in free text;
// a one- or two-character password matches too much ordinary text to remove.
const minSecretLen = 3

// RedactSecrets removes from text every password that the given connection
// URLs carry, raw and decoded, as pgconn reads them and as any other parser
// could: the last line of defence for messages that come from code outside
// this module, such as a driver's errors.
func RedactSecrets(text string, urls ...string) string {
	var secrets []string
	for _, raw := range urls {
		if raw != "" {
			secrets = append(secrets, secretsOf(raw)...)
		}
	}
	// Longest first, so that a secret's parts do not leave its rest behind.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, "xxxxx")
	}
	return text
}

// secretsOf returns what in raw could be a password: pgconn's reading, then
// the password part of the user info up to the first and up to the last @,
// each piece between @ signs, and password parameters, each also decoded.
func secretsOf(raw string) []string {
	var secrets []string
	add := func(s string) {
		for _, v := range []string{s, decoded(s, url.PathUnescape), decoded(s, url.QueryUnescape)} {
			if len(v) >= minSecretLen && !slices.Contains(secrets, v) {
				secrets = append(secrets, v)
			}
		}
	}
	if cc, err := pgconn.ParseConfig(raw); err == nil {
		add(cc.Password)
	}
	_, rest, _ := strings.Cut(raw, "://")
	for _, at := range []int{strings.IndexByte(rest, '@'), strings.LastIndexByte(rest, '@')} {
		if at < 0 {
			continue
		}
		if _, password, ok := strings.Cut(rest[:at], ":"); ok {
			add(password)
			for _, piece := range strings.FieldsFunc(password, func(r rune) bool { return r == '@' || r == '/' || r == ':' }) {
				add(piece)
			}
		}
	}
	lower := strings.ToLower(raw)
	for _, key := range []string{"password=", "sslpassword="} {
		for i := strings.Index(lower, key); i >= 0; {
			value := raw[i+len(key):]
			add(value) // up to the end: an unencoded & may be part of it
			if amp := strings.IndexByte(value, '&'); amp >= 0 {
				add(value[:amp])
			}
			next := strings.Index(lower[i+len(key):], key)
			if next < 0 {
				break
			}
			i += len(key) + next
		}
	}
	return secrets
}

func decoded(s string, unescape func(string) (string, error)) string {
	if d, err := unescape(s); err == nil {
		return d
	}
	return s
}

// RedactError returns err with every password of the given URLs removed
// from its message; errors.Is and errors.As still reach err itself.
func RedactError(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: RedactSecrets(err.Error(), urls...), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
