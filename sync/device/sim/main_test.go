package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"--list"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "fresh-install\n") {
		t.Fatalf("--list: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"--print-tables"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"sync_key"`) {
		t.Fatalf("--print-tables: %d %q", code, out.String())
	}
	if _, err := Schema(); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"--url", ""}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: syncplane sim") {
		t.Fatalf("missing url: %d %q", code, errb.String())
	}
	if code := Main(context.Background(), []string{"--run", "("}, &out, &errb); code != 2 {
		t.Fatalf("bad --run: %d", code)
	}
}
