// Package miniotest starts a real MinIO server for tests: on 127.0.0.1, on
// a free port, over its own temporary directory, killed when the test ends.
//
// # Finding the binary
//
// The server binary is looked up, in order, at $COVE_MINIO, as "minio" on
// $PATH, in $HOME/.cache/cove/bin (where .ci/run installs it) and in
// $GOBIN or $GOPATH/bin. Install it with
//
//	GOBIN=$HOME/.cache/cove/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// (about two minutes). Without it, Start skips the test with that message,
// unless the environment has CI=true: there a missing binary fails the test,
// so CI always runs the MinIO tests.
//
// # Concurrency
//
// A Server is safe for concurrent use; each Start runs a separate process.
package miniotest
