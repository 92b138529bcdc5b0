package service_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove/sdk/client"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// coveBinary builds the cove command once per test binary.
func coveBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cove-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "cove")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/covedata/cove/cmd/cove").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// (PEM) into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cove test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestServeTLS starts `cove serve -tls-cert -tls-key` with a certificate
// made here: the SDK trusting that certificate as its CA gets answers; a
// client trusting the system roots, or speaking plain HTTP, gets none; the
// CLI with -ca works.
func TestServeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the cove binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := coveBinary(t)
	tmp := t.TempDir()
	certFile, keyFile, cert := selfSigned(t, tmp)
	tokFile := filepath.Join(tmp, "authority.token")
	srv := exec.CommandContext(ctx, bin, "serve", "-data-dir", filepath.Join(tmp, "data"), "-addr", "127.0.0.1:0",
		"-tls-cert", certFile, "-tls-key", keyFile, "-init-token", tokFile)
	srv.Stderr = os.Stderr
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(line, "https://"), strings.Index(line, " (data")
	if i < 0 || j < i {
		t.Fatalf("serve printed %q, want an https:// address", line)
	}
	url := line[i:j]
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c, err := client.New(url, client.WithToken(strings.TrimSpace(string(tok))), client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.WhoAmI(ctx)
	if err != nil || p.Role != "authority" {
		t.Fatalf("whoami over TLS: %+v %v", p, err)
	}
	if _, err := c.Disclosure(ctx); err != nil {
		t.Fatalf("disclosure over TLS: %v", err)
	}
	// The system roots do not know the certificate.
	plain, _ := client.New(url)
	var uerr x509.UnknownAuthorityError
	if _, err := plain.Health(ctx); !errors.As(err, &uerr) {
		t.Fatalf("health without the CA: %v, want an unknown authority", err)
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(url + "/healthz"); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	// The CLI with -ca.
	cmd := exec.CommandContext(ctx, bin, "token", "list", "-server", url, "-ca", certFile, "-token", "@"+tokFile)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "authority") {
		t.Fatalf("cove token list -ca: %v\n%s", err, b)
	}
}
