package reliability_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a server certificate for ips, signed by ca, in PEM.
func (ca testCA) issue(t *testing.T, ips ...net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "postgres test server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// sslmode=verify-full against a real PostgreSQL whose certificate, for
// 127.0.0.1 only, comes from a CA the test makes.
func TestVerifyFullTLS(t *testing.T) {
	ctx := context.Background()
	ca := newCA(t, "fxpg test CA")
	certPEM, keyPEM := ca.issue(t, net.ParseIP("127.0.0.1"))
	srv, err := pgtemp.Start(ctx, pgtemp.Options{
		Settings: map[string]string{"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"},
		Configure: func(dataDir string) error {
			if err := os.WriteFile(filepath.Join(dataDir, "server.crt"), certPEM, 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dataDir, "server.key"), keyPEM, 0o600)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	dir := t.TempDir()
	trusted := filepath.Join(dir, "ca.pem")
	untrusted := filepath.Join(dir, "other-ca.pem")
	if err := os.WriteFile(trusted, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(untrusted, newCA(t, "someone else's CA").pem, 0o644); err != nil {
		t.Fatal(err)
	}
	tlsURL := func(host, rootCert string) string {
		u, _ := url.Parse(srv.URL("postgres"))
		u.Host = net.JoinHostPort(host, u.Port())
		u.RawQuery = url.Values{"sslmode": {"verify-full"}, "sslrootcert": {rootCert}}.Encode()
		return u.String()
	}

	t.Run("trusted CA connects over TLS", func(t *testing.T) {
		pool, err := dbmodule.Open(ctx, config.DB{URL: tlsURL("127.0.0.1", trusted)})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var ssl bool
		var version string
		if err := pool.QueryRow(ctx, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &version); err != nil || !ssl {
			t.Fatalf("connection is not TLS: %v %v", ssl, err)
		}
		t.Logf("connected with %s", version)
	})
	for _, tt := range []struct {
		name, url, want string
	}{
		{"untrusted CA fails", tlsURL("127.0.0.1", untrusted), "certificate signed by unknown authority"},
		{"wrong host name fails", tlsURL("localhost", trusted), "certificate is not valid for any names, but wanted to match localhost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dbmodule.Open(ctx, config.DB{URL: tt.url, ConnectTimeout: 5 * time.Second})
			if err == nil {
				t.Fatal("connected")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "DATABASE_URL") {
				t.Errorf("error %q does not say %q and name DATABASE_URL", err, tt.want)
			}
			if strings.Contains(err.Error(), srv.Password()) {
				t.Error("error shows the password")
			}
		})
	}
}

// DB_STATEMENT_TIMEOUT becomes the server's statement_timeout for the
// pool's connections.
func TestStatementTimeout(t *testing.T) {
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, config.DB{URL: pg.URL(t), StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var setting string
	if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&setting); err != nil || setting != "100ms" {
		t.Errorf("statement_timeout = %q, %v; want 100ms", setting, err)
	}
	start := time.Now()
	_, err = pool.Exec(ctx, "SELECT pg_sleep(2)")
	took := time.Since(start)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" || !strings.Contains(pgErr.Message, "statement timeout") {
		t.Errorf("pg_sleep(2) = %v; want the server to cancel it (57014)", err)
	}
	if took > time.Second {
		t.Errorf("the statement ran %s; the server should have stopped it after 100ms", took)
	}
	if _, err := pool.Exec(ctx, "SELECT pg_sleep(0.01)"); err != nil {
		t.Errorf("a statement within the timeout: %v", err)
	}
	t.Logf("pg_sleep(2) canceled by the server after %s", took.Round(time.Millisecond))
}
