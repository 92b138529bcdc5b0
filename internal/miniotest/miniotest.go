package miniotest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Version is the MinIO release .ci/run installs.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Install is the command that installs the server where Binary looks.
const Install = "GOBIN=$HOME/.cache/cove/bin go install github.com/minio/minio@" + Version

// Root credentials of every test server.
const (
	AccessKey = "coveminio"
	SecretKey = "coveminio-secret"
)

// Server is a running MinIO process.
type Server struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	Dir       string // its data directory

	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	once sync.Once
}

// Binary returns the path of the minio binary, or an error saying how to
// install it.
func Binary() (string, error) {
	if p := os.Getenv("COVE_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("COVE_MINIO=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "cove", "bin"))
	}
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if info, err := os.Stat(p); err == nil && !info.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no minio binary (looked at $COVE_MINIO, $PATH, %v); install it with: %s (or run .ci/run)", dirs, Install)
}

// Require returns the minio binary, or skips the test saying how to enable
// it; under CI=true a missing binary fails the test instead.
func Require(t testing.TB) string {
	t.Helper()
	p, err := Binary()
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true requires the MinIO tests to run: %v", err)
	}
	t.Skipf("skipping MinIO test: %v", err)
	return ""
}

// Start starts a server over a temporary directory of t's and stops it
// when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	s, err := New(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// New starts the binary bin over dir and waits until it serves. The caller
// must Kill it.
func New(bin, dir string) (*Server, error) {
	var last error
	for range 3 { // a free port can be taken before the server binds it
		s, err := start(bin, dir)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func start(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &Server{Endpoint: addr, AccessKey: AccessKey, SecretKey: SecretKey, Dir: dir, log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", "127.0.0.1:"+strconv.Itoa(console), dir)
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	setProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("minio exited at start: %s", s.log)
		default:
		}
		resp, err := client.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return nil, errors.New("minio did not become ready in 30s")
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	s.once.Do(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.log.String() }

// syncBuffer collects the server's output, written by exec's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
