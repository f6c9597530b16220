package main

// Static checks of the repository's Dockerfile (no Docker daemon needed).

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

const dockerfilePath = "../../Dockerfile"

type dfInstr struct {
	Line int    // 1-based line where the instruction starts
	Cmd  string // upper-case instruction, e.g. "FROM"
	Args string // everything after the instruction, continuations joined
}

type dfStage struct {
	From     dfInstr
	Image    string // image reference as written
	Name     string // "AS name", lower-cased
	Platform string
	Instrs   []dfInstr // instructions after FROM
}

type dockerfile struct {
	GlobalArgs map[string]string // ARGs before the first FROM
	Global     []dfInstr
	Stages     []dfStage
}

// parseDockerfile understands what our Dockerfile uses: comments, backslash
// continuations, FROM [--platform=...] image [AS name]. Heredocs are not
// supported.
func parseDockerfile(text string) (*dockerfile, error) {
	df := &dockerfile{GlobalArgs: map[string]string{}}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		start := i + 1
		var b strings.Builder
		for {
			cont := strings.HasSuffix(line, `\`)
			b.WriteString(strings.TrimSuffix(line, `\`))
			if !cont {
				break
			}
			b.WriteByte(' ')
			// Skip comment and blank lines inside a continuation, as Docker does.
			for i++; i < len(lines); i++ {
				line = strings.TrimSpace(lines[i])
				if line != "" && !strings.HasPrefix(line, "#") {
					break
				}
			}
			if i >= len(lines) {
				return nil, fmt.Errorf("line %d: continuation at end of file", start)
			}
		}
		full := strings.TrimSpace(b.String())
		cmd, args, _ := strings.Cut(full, " ")
		in := dfInstr{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if strings.Contains(in.Args, "<<") && (in.Cmd == "RUN" || in.Cmd == "COPY") {
			return nil, fmt.Errorf("line %d: heredocs are not supported by this check", start)
		}
		if in.Cmd == "FROM" {
			st := dfStage{From: in}
			fields := strings.Fields(in.Args)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				if v, ok := strings.CutPrefix(fields[0], "--platform="); ok {
					st.Platform = v
				}
				fields = fields[1:]
			}
			switch {
			case len(fields) == 1:
			case len(fields) == 3 && strings.EqualFold(fields[1], "AS"):
				st.Name = strings.ToLower(fields[2])
			default:
				return nil, fmt.Errorf("line %d: cannot parse FROM %s", start, in.Args)
			}
			if len(fields) == 0 {
				return nil, fmt.Errorf("line %d: FROM without image", start)
			}
			st.Image = fields[0]
			df.Stages = append(df.Stages, st)
			continue
		}
		if len(df.Stages) == 0 {
			df.Global = append(df.Global, in)
			if in.Cmd == "ARG" {
				for k, v := range dfKeyValues(in) {
					df.GlobalArgs[k] = v
				}
			}
			continue
		}
		st := &df.Stages[len(df.Stages)-1]
		st.Instrs = append(st.Instrs, in)
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction")
	}
	return df, nil
}

// dfKeyValues returns the variables set by an ENV or ARG instruction
// (ARG without default maps to ""). Supports `ENV K=V K2="V 2"`, the legacy
// `ENV K V` and `ARG K[=V]`.
func dfKeyValues(in dfInstr) map[string]string {
	kv := map[string]string{}
	if in.Cmd == "ENV" && !strings.Contains(strings.Fields(in.Args + " x")[0], "=") {
		k, v, _ := strings.Cut(in.Args, " ")
		kv[k] = strings.TrimSpace(v)
		return kv
	}
	for _, tok := range dfSplitWords(in.Args) {
		k, v, _ := strings.Cut(tok, "=")
		kv[k] = v
	}
	return kv
}

// dfSplitWords splits on spaces outside quotes and removes the quotes.
func dfSplitWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

var (
	dfVarRE    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	dfDigestRE = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	// Names of variables that must not get a value baked into the image.
	dfSecretRE = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_?KEY|ACCESS_?KEY|API_?KEY|(^|_)KEY$)`)
)

// expandGlobal substitutes global ARGs; ok is false if a variable has no value.
func (df *dockerfile) expandGlobal(s string) (string, bool) {
	ok := true
	out := dfVarRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := dfVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[3]
		if v := df.GlobalArgs[name]; v != "" {
			return v
		}
		if def, found := strings.CutPrefix(sub[2], ":-"); found && def != "" {
			return def
		}
		ok = false
		return m
	})
	return out, ok
}

// imagePinned reports whether ref names an exact image: a digest, or an
// explicit tag other than "latest".
func imagePinned(ref string) (bool, string) {
	if dfDigestRE.MatchString(ref) {
		return true, ""
	}
	if strings.Contains(ref, "@") {
		return false, "has a malformed digest"
	}
	name := path.Base(ref) // the tag follows the last path element; a registry port does not count
	_, tag, hasTag := strings.Cut(name, ":")
	switch {
	case !hasTag || tag == "":
		return false, "has no tag (implicitly :latest); pin an exact tag and/or @sha256 digest"
	case strings.EqualFold(tag, "latest"):
		return false, "uses :latest; pin an exact tag and/or @sha256 digest"
	}
	return true, ""
}

// checkDockerfile returns every policy violation found in df.
func checkDockerfile(df *dockerfile) []string {
	var problems []string
	addf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	stageNames := map[string]bool{}
	for _, st := range df.Stages {
		img, ok := df.expandGlobal(st.Image)
		switch {
		case !ok:
			addf("line %d: FROM %s: unresolved variable; give the global ARG a pinned default", st.From.Line, st.Image)
		case stageNames[strings.ToLower(img)], img == "scratch":
			// earlier stage or the empty image: nothing to pin
		default:
			if pinned, why := imagePinned(img); !pinned {
				addf("line %d: FROM %s %s", st.From.Line, img, why)
			}
		}
		if st.Name != "" {
			stageNames[st.Name] = true
		}
	}

	final := df.Stages[len(df.Stages)-1]
	finalImg, _ := df.expandGlobal(final.Image)
	if !strings.HasPrefix(finalImg, "gcr.io/distroless/static") {
		addf("line %d: final stage is %s; it must be gcr.io/distroless/static (static binary, no shell, no package manager)", final.From.Line, finalImg)
	}

	var user, health, entrypoint *dfInstr
	exposed := map[string]bool{}
	for i, in := range final.Instrs {
		switch in.Cmd {
		case "USER":
			user = &final.Instrs[i]
		case "HEALTHCHECK":
			health = &final.Instrs[i]
		case "ENTRYPOINT":
			entrypoint = &final.Instrs[i]
		case "EXPOSE":
			for _, p := range strings.Fields(in.Args) {
				exposed[strings.TrimSuffix(p, "/tcp")] = true
			}
		}
	}
	if user == nil {
		addf("final stage has no USER instruction; it must run as a non-root user (USER 65532:65532)")
	} else {
		name, _, _ := strings.Cut(strings.TrimSpace(user.Args), ":")
		switch {
		case strings.Contains(name, "$"):
			addf("line %d: USER %s: cannot verify a variable user; use a literal non-root uid", user.Line, user.Args)
		case name == "root" || strings.TrimLeft(name, "0") == "" || name == "":
			addf("line %d: USER %s: the final stage must not run as root", user.Line, user.Args)
		}
	}
	if health == nil {
		addf("final stage has no HEALTHCHECK; add HEALTHCHECK CMD [\"/syncplane\",\"healthcheck\"]")
	} else if argv := dfHealthcheckCmd(health.Args); len(argv) < 2 || path.Base(argv[0]) != "syncplane" || argv[1] != "healthcheck" {
		addf("line %d: HEALTHCHECK %s: must run `syncplane healthcheck`", health.Line, health.Args)
	}
	if entrypoint == nil {
		addf("final stage has no ENTRYPOINT")
	} else if argv := dfExecForm(entrypoint.Args); len(argv) == 0 || argv[0] != "/syncplane" {
		addf("line %d: ENTRYPOINT %s: want exec form [\"/syncplane\"]", entrypoint.Line, entrypoint.Args)
	}
	for _, port := range []string{"8080", "9090"} {
		if !exposed[port] {
			addf("final stage does not EXPOSE %s", port)
		}
	}

	// The binary must be static: CGO_ENABLED=0 for every `go build`, in the
	// RUN line itself or in the stage's ENV/ARG.
	builds := 0
	for _, st := range df.Stages {
		stageCGO := ""
		for _, in := range st.Instrs {
			switch in.Cmd {
			case "ENV", "ARG":
				if v, ok := dfKeyValues(in)["CGO_ENABLED"]; ok {
					stageCGO = v
				}
			case "RUN":
				if !strings.Contains(in.Args, "go build") {
					if strings.Contains(in.Args, "CGO_ENABLED=1") {
						addf("line %d: RUN sets CGO_ENABLED=1", in.Line)
					}
					continue
				}
				builds++
				inline := regexp.MustCompile(`CGO_ENABLED=(\S*)`).FindAllStringSubmatch(in.Args, -1)
				cgo := stageCGO
				if len(inline) > 0 {
					cgo = inline[len(inline)-1][1]
				}
				if cgo != "0" {
					addf("line %d: go build without CGO_ENABLED=0 (got %q); the runtime image has no libc", in.Line, cgo)
				}
				if !strings.Contains(in.Args, "-X main.version=") {
					addf("line %d: go build does not stamp the version (-ldflags -X main.version=...)", in.Line)
				}
			}
		}
	}
	if builds == 0 {
		addf("no RUN ... go build found")
	}

	// No secrets baked into image metadata or layers.
	var all []dfInstr
	all = append(all, df.Global...)
	for _, st := range df.Stages {
		all = append(all, st.Instrs...)
	}
	for _, in := range all {
		if in.Cmd != "ENV" && in.Cmd != "ARG" {
			continue
		}
		for k, v := range dfKeyValues(in) {
			if dfSecretRE.MatchString(k) && v != "" {
				addf("line %d: %s %s looks like a secret with a value; pass secrets at runtime (or RUN --mount=type=secret), never in the Dockerfile", in.Line, in.Cmd, k)
			}
		}
	}
	return problems
}

// dfExecForm parses a JSON exec form; nil if args are not one.
func dfExecForm(args string) []string {
	var argv []string
	if json.Unmarshal([]byte(strings.TrimSpace(args)), &argv) != nil {
		return nil
	}
	return argv
}

// dfHealthcheckCmd returns the command of `HEALTHCHECK [--opt=v...] CMD ...`.
func dfHealthcheckCmd(args string) []string {
	rest := strings.TrimSpace(args)
	for strings.HasPrefix(rest, "--") {
		_, rest, _ = strings.Cut(rest, " ")
		rest = strings.TrimSpace(rest)
	}
	kw, rest, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(kw, "CMD") {
		return nil
	}
	if argv := dfExecForm(rest); argv != nil {
		return argv
	}
	return strings.Fields(rest)
}

func readDockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	return string(b)
}

func TestDockerfile(t *testing.T) {
	df, err := parseDockerfile(readDockerfile(t))
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfilePath, err)
	}
	if len(df.Stages) < 2 {
		t.Errorf("want a multi-stage build (build + runtime), got %d stage(s)", len(df.Stages))
	}
	for _, p := range checkDockerfile(df) {
		t.Errorf("Dockerfile: %s", p)
	}
}

// TestDockerfileCheckCatchesMistakes applies typical regressions to the real
// Dockerfile and makes sure the check reports each of them.
func TestDockerfileCheckCatchesMistakes(t *testing.T) {
	orig := readDockerfile(t)
	const digest = "@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	cases := []struct {
		name    string
		re      string // regexp of the line(s) to change
		repl    string
		wantErr string // substring of a reported problem; "" means must pass
	}{
		{"user root", `(?m)^USER .*$`, "USER root", "must not run as root"},
		{"user 0", `(?m)^USER .*$`, "USER 0:0", "must not run as root"},
		{"no user", `(?m)^USER .*$`, "", "no USER instruction"},
		{"latest builder", `(?m)^FROM (--platform=\S+ )?golang:\S+`, "FROM golang:latest", "uses :latest"},
		{"untagged builder", `(?m)^FROM (--platform=\S+ )?golang:\S+`, "FROM golang", "has no tag"},
		{"untagged runtime", `(?m)^FROM gcr\.io/distroless/static-debian12:\S+`, "FROM gcr.io/distroless/static-debian12", "has no tag"},
		{"debian runtime", `(?m)^FROM gcr\.io/distroless/static-debian12:\S+`, "FROM debian:bookworm-slim", "must be gcr.io/distroless/static"},
		{"no healthcheck", `(?m)^HEALTHCHECK .*(\n\s+.*)?$`, "", "no HEALTHCHECK"},
		{"wrong healthcheck", `(?m)"healthcheck"`, `"version"`, "must run `syncplane healthcheck`"},
		{"cgo on", `CGO_ENABLED=0`, "CGO_ENABLED=1", "without CGO_ENABLED=0"},
		{"cgo unset", `CGO_ENABLED=0 `, "", "without CGO_ENABLED=0"},
		{"no version", ` -X main\.version=\$\{VERSION\}`, "", "does not stamp the version"},
		{"env password", `(?m)^EXPOSE `, "ENV DATABASE_PASSWORD=hunter2\nEXPOSE ", "DATABASE_PASSWORD looks like a secret"},
		{"legacy env key", `(?m)^EXPOSE `, "ENV STRIPE_API_KEY sk_live_123\nEXPOSE ", "STRIPE_API_KEY looks like a secret"},
		{"arg token", `(?m)^EXPOSE `, "ARG GITHUB_TOKEN=ghp_123\nEXPOSE ", "GITHUB_TOKEN looks like a secret"},
		{"arg without value is fine", `(?m)^EXPOSE `, "ARG GITHUB_TOKEN\nEXPOSE ", ""},
		{"digest pin is fine", `(?m)^(FROM gcr\.io/distroless/static-debian12:\S+)`, "${1}" + digest, ""},
		{"digest only is fine", `(?m)^FROM gcr\.io/distroless/static-debian12:\S+`, "FROM gcr.io/distroless/static-debian12" + digest, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			re := regexp.MustCompile(tc.re)
			if !re.MatchString(orig) {
				t.Fatalf("pattern %s no longer matches the Dockerfile; update this test case", tc.re)
			}
			df, err := parseDockerfile(re.ReplaceAllString(orig, tc.repl))
			if err != nil {
				t.Fatal(err)
			}
			problems := checkDockerfile(df)
			if tc.wantErr == "" {
				if len(problems) > 0 {
					t.Fatalf("unexpected problems: %q", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tc.wantErr) {
					return
				}
			}
			t.Fatalf("check did not report %q; got %q", tc.wantErr, problems)
		})
	}
}
