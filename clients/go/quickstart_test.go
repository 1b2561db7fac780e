// The README's quickstart: it is the example program, verbatim, and it runs.

package switchyard_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const quickstartFile = "examples/quickstart/main.go"

// The quickstart program prints what the README says it prints, against a real broker.
func TestQuickstartRuns(t *testing.T) {
	addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // includes compiling it
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/quickstart")
	cmd.Env = append(os.Environ(), "SWITCHYARD_ADDR="+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./examples/quickstart: %v\n%s", err, out)
	}
	want := readmeBlock(t, "quickstart-output")
	if string(out) != want {
		t.Fatalf("quickstart printed\n%s\nthe README says\n%s", out, want)
	}
}

// The README shows the quickstart program as it is.
func TestReadmeQuickstartIsTheExample(t *testing.T) {
	source, err := os.ReadFile(quickstartFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := readmeBlock(t, "quickstart"); got != string(source) {
		t.Fatalf("README.md's quickstart block differs from %s: copy the file into the README", quickstartFile)
	}
}

// readmeBlock returns the fenced code block that follows the line "<!-- name -->" in README.md.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, found := strings.Cut(string(readme), "<!-- "+name+" -->\n")
	if !found {
		t.Fatalf("README.md has no <!-- %s --> marker", name)
	}
	_, body, found := strings.Cut(after, "\n") // the opening fence line
	if !found || !strings.HasPrefix(after, "```") {
		t.Fatalf("README.md: no code block after <!-- %s -->", name)
	}
	body, _, found = strings.Cut(body, "\n```\n")
	if !found {
		t.Fatalf("README.md: the code block after <!-- %s --> is not closed", name)
	}
	return body + "\n"
}
