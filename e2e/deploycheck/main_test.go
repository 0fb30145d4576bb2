package deploycheck

import (
	"testing"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

func TestMain(m *testing.M) { stack.Main(m) }

// repoRoot returns the repository root or fails the test.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
