package store

import (
	"os"
	"sync"
	"syscall"
)

// FailpointEnv names the environment variable that makes the process kill
// itself with SIGKILL when it reaches a named step, as a crash would. The
// crash tests set it in a child process; nothing else should. Steps:
//
//	release:begin          the release transaction has started, nothing written
//	release:after-debit    the budget is debited, the release not yet stored
//	release:after-store    the release is stored, the ledger not yet appended
//	release:after-ledger   the ledger entries are appended, not yet committed
//	release:after-commit   the transaction is committed
const FailpointEnv = "COVE_FAILPOINT"

var failpointName = sync.OnceValue(func() string { return os.Getenv(FailpointEnv) })

// failpoint kills the process at step when the environment asks for it.
func failpoint(step string) {
	if name := failpointName(); name != "" && name == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal is on its way
	}
}
