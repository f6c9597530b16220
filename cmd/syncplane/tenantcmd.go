package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/syncplane/syncplane/tenant"
)

const tenantUsage = `usage: syncplane tenant <command> [arguments] [--database-url URL]

  create <slug> [--name N] [--wire-schema app] [--placement default] [--plan free]
  list
  show <slug>
  suspend <slug>
  resume <slug>
  delete <slug> --confirm <slug>
  key create <slug> [--kind publishable|secret] [--label L]
  key list <slug>
  key revoke <slug> <key id>
  auth set <slug> (--generate-hs256 | --hs256-secret S... | --public-key-file F... | --jwks-url U)
                  [--issuer I] [--audience A] [--leeway-seconds N]
  auth show <slug>
  auth reseal          (seal every tenant's HS256 secrets with the first key of $SYNCPLANE_SEAL_KEYS)
  tables apply <slug> --file definition.json|yaml [--allow-breaking] [--dry-run] [--yes]
  tables show <slug> [--version N]
  tables versions <slug>
  quota show <slug>
  quota set <slug> [--plan P] [--requests-per-second N] [--request-burst N] [--max-active-devices N]
                   [--max-rows N] [--max-storage-bytes N] [--max-bundle-bytes N] [--max-rows-per-chunk N]
                   [--max-watchers N]      (0 = unlimited; -1 = back to the plan's value)
  usage [<slug>] [--from 2026-11-01] [--to 2026-12-01] [--format csv|json]
`

// cli is one invocation of an operator command.
type cli struct {
	ctx    context.Context
	out    io.Writer
	errOut io.Writer
	in     io.Reader
	store  *tenant.Store
	actor  tenant.Actor
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseInterspersed parses flags that may come before, between or after
// positional arguments, returning the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runTenant(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stdout, tenantUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	if (name == "key" || name == "auth" || name == "tables" || name == "quota") && len(rest) > 0 {
		name += " " + rest[0]
		rest = rest[1:]
	}
	cmd, ok := tenantCommands[name]
	if !ok {
		fmt.Fprintf(stderr, "syncplane tenant: unknown command %q\n\n%s", name, tenantUsage)
		return 2
	}
	fs := flag.NewFlagSet("tenant "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", os.Getenv("SYNCPLANE_DATABASE_URL"), "control-plane PostgreSQL URL ($SYNCPLANE_DATABASE_URL)")
	run := cmd(fs)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	sealer, err := tenant.ParseSealKeys(os.Getenv("SYNCPLANE_SEAL_KEYS"))
	if err != nil {
		fmt.Fprintln(stderr, "syncplane tenant: SYNCPLANE_SEAL_KEYS:", err)
		return 1
	}
	store, closeStore, err := openStore(ctx, *dbURL, sealer)
	if err != nil {
		fmt.Fprintln(stderr, "syncplane tenant:", err)
		return 1
	}
	defer closeStore()
	c := &cli{ctx: ctx, out: stdout, errOut: stderr, in: os.Stdin, store: store, actor: cliActor()}
	if err := run(c, pos); err != nil {
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "syncplane tenant %s: %s\n\n%s", name, usageErr, tenantUsage)
			return 2
		}
		fmt.Fprintf(stderr, "syncplane tenant %s: %s\n", name, describeError(err))
		return 1
	}
	return 0
}

type usageError string

func (u usageError) Error() string { return string(u) }

func wantArgs(pos []string, names ...string) error {
	if len(pos) != len(names) {
		return usageError("want arguments: " + strings.Join(names, " "))
	}
	return nil
}

// describeError turns domain errors into operator-facing text.
func describeError(err error) string {
	var ve *tenant.ValidationError
	var de *tenant.DefinitionError
	switch {
	case errors.As(err, &ve):
		return ve.Message
	case errors.As(err, &de):
		return "the table definition is invalid:\n" + de.Error()
	case errors.Is(err, tenant.ErrNotFound):
		return "not found"
	case errors.Is(err, tenant.ErrTenantExists):
		return "a tenant with this slug already exists"
	}
	return err.Error()
}

func cliActor() tenant.Actor {
	u := os.Getenv("USER")
	if u == "" {
		u = "operator"
	}
	return tenant.Actor{Name: "cli:" + u, RemoteAddr: "local"}
}

// openStore opens the control plane for an operator command; sealer seals
// and opens HS256 secrets (nil: they are written unsealed).
func openStore(ctx context.Context, url string, sealer *tenant.Sealer) (*tenant.Store, func(), error) {
	pool, err := openPool(ctx, url, 4)
	if err != nil {
		return nil, nil, err
	}
	clusters := tenant.NewClusters(pool)
	if extra := os.Getenv("SYNCPLANE_CLUSTERS"); extra != "" {
		for _, pair := range strings.Fields(extra) {
			name, dsn, _ := strings.Cut(pair, "=")
			if err := clusters.Add(ctx, name, dsn); err != nil {
				pool.Close()
				return nil, nil, err
			}
		}
	}
	store := tenant.NewStore(pool, clusters)
	store.SetSealer(sealer)
	return store, func() { clusters.Close(); pool.Close() }, nil
}

func (c *cli) tenant(slug string) (*tenant.Tenant, error) {
	t, err := c.store.Tenant(c.ctx, slug)
	if errors.Is(err, tenant.ErrNotFound) {
		return nil, fmt.Errorf("no tenant %q (see syncplane tenant list)", slug)
	}
	return t, err
}

// tenantArg checks the positional arguments (the slug first, then more)
// and loads the tenant the slug names.
func (c *cli) tenantArg(pos []string, more ...string) (*tenant.Tenant, error) {
	if err := wantArgs(pos, append([]string{"<slug>"}, more...)...); err != nil {
		return nil, err
	}
	return c.tenant(pos[0])
}

type tenantCommand func(fs *flag.FlagSet) func(c *cli, pos []string) error

var tenantCommands = map[string]tenantCommand{
	"create": func(fs *flag.FlagSet) func(*cli, []string) error {
		name := fs.String("name", "", "display name (default: the slug)")
		wire := fs.String("wire-schema", "app", "schema name clients use on the wire")
		placement := fs.String("placement", tenant.DefaultPlacement, "PostgreSQL cluster to hold the tenant schema")
		plan := fs.String("plan", "free", "quota plan")
		return func(c *cli, pos []string) error {
			if err := wantArgs(pos, "<slug>"); err != nil {
				return err
			}
			t, err := c.store.CreateTenant(c.ctx, tenant.NewTenant{Slug: pos[0], Name: *name, WireSchema: *wire,
				Placement: *placement, Plan: *plan}, c.actor)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "created tenant %s (schema %s, wire schema %q)\n", t.Slug, t.SchemaName(), t.WireSchema)
			fmt.Fprintf(c.out, "next: syncplane tenant key create %s; syncplane tenant auth set %s ...; syncplane tenant tables apply %s --file tables.json\n",
				t.Slug, t.Slug, t.Slug)
			return nil
		}
	},
	"list": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			if err := wantArgs(pos); err != nil {
				return err
			}
			ts, err := c.store.ListTenants(c.ctx)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				fmt.Fprintln(c.out, "no tenants yet: syncplane tenant create <slug>")
				return nil
			}
			tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SLUG\tNAME\tSTATE\tWIRE SCHEMA\tPLACEMENT\tPLAN\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Name, t.State, t.WireSchema, t.Placement, t.Plan,
					t.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		}
	},
	"show": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "slug\t%s\nname\t%s\nstate\t%s\nschema\t%s\nwire schema\t%s\nplacement\t%s\nplan\t%s\nwatch\t%t\nretained bundles\t%d\ncreated\t%s\n",
				t.Slug, t.Name, t.State, t.SchemaName(), t.WireSchema, t.Placement, t.Plan, t.WatchEnabled, t.RetainedBundles,
				t.CreatedAt.UTC().Format(time.RFC3339))
			if v, err := c.store.CurrentTables(c.ctx, t.ID); err == nil {
				fmt.Fprintf(tw, "tables\tversion %d: %s\n", v.Version, tableNames(v.Schema))
			} else {
				fmt.Fprintf(tw, "tables\tnone yet\n")
			}
			if a, _, err := c.store.Auth(c.ctx, t.ID); err == nil {
				fmt.Fprintf(tw, "end-user auth\t%s\n", a.Mode)
			} else {
				fmt.Fprintf(tw, "end-user auth\tnot configured\n")
			}
			keys, err := c.store.ListKeys(c.ctx, t.ID)
			if err != nil {
				return err
			}
			active := 0
			for _, k := range keys {
				if k.RevokedAt == nil {
					active++
				}
			}
			fmt.Fprintf(tw, "api keys\t%d active, %d revoked\n", active, len(keys)-active)
			return tw.Flush()
		}
	},
	"suspend": stateCommand(tenant.StateSuspended),
	"resume":  stateCommand(tenant.StateActive),
	"delete": func(fs *flag.FlagSet) func(*cli, []string) error {
		confirm := fs.String("confirm", "", "repeat the slug to confirm deleting the tenant and all its data")
		return func(c *cli, pos []string) error {
			if err := wantArgs(pos, "<slug>"); err != nil {
				return err
			}
			if *confirm != pos[0] {
				return usageError(fmt.Sprintf("deleting drops every table and row of %s; repeat the slug: --confirm %s", pos[0], pos[0]))
			}
			if err := c.store.DeleteTenant(c.ctx, pos[0], c.actor); err != nil {
				if errors.Is(err, tenant.ErrNotFound) {
					return fmt.Errorf("no tenant %q", pos[0])
				}
				return err
			}
			fmt.Fprintf(c.out, "deleted tenant %s and its schema\n", pos[0])
			return nil
		}
	},
	"key create": func(fs *flag.FlagSet) func(*cli, []string) error {
		kind := fs.String("kind", string(tenant.KeyPublishable), "publishable (ships in apps) or secret (server to server)")
		label := fs.String("label", "", "a note saying where the key is used")
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			k, err := tenant.ParseKeyKind(*kind)
			if err != nil {
				return err
			}
			secret, rec, err := c.store.CreateKey(c.ctx, t.ID, k, *label, c.actor)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "created %s key %d for %s; it is shown only now, store it safely:\n\n  %s\n\n", rec.Kind, rec.ID, t.Slug, secret)
			return nil
		}
	},
	"key list": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			keys, err := c.store.ListKeys(c.ctx, t.ID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tKEY\tLABEL\tCREATED\tLAST USED\tREVOKED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Kind, k.Display, k.Label,
					k.CreatedAt.UTC().Format(time.RFC3339), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt))
			}
			return tw.Flush()
		}
	},
	"key revoke": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos, "<key id>")
			if err != nil {
				return err
			}
			id, err := strconv.ParseInt(pos[1], 10, 64)
			if err != nil {
				return usageError("key id must be a number (see syncplane tenant key list)")
			}
			if err := c.store.RevokeKey(c.ctx, t.ID, id, c.actor); err != nil {
				if errors.Is(err, tenant.ErrNotFound) {
					return fmt.Errorf("tenant %s has no key %d", t.Slug, id)
				}
				return err
			}
			fmt.Fprintf(c.out, "revoked key %d of %s; every replica refuses it within a second\n", id, t.Slug)
			return nil
		}
	},
	"auth set": func(fs *flag.FlagSet) func(*cli, []string) error {
		gen := fs.Bool("generate-hs256", false, "generate a new HS256 secret and print it once")
		var secrets, keyFiles multiFlag
		fs.Var(&secrets, "hs256-secret", "HS256 shared secret (repeatable, for rotation)")
		fs.Var(&keyFiles, "public-key-file", "PEM public key file, RSA/ECDSA/Ed25519 (repeatable)")
		jwks := fs.String("jwks-url", "", "JWKS URL of the app's identity provider")
		iss := fs.String("issuer", "", "required iss claim")
		aud := fs.String("audience", "", "required aud claim")
		leeway := fs.Int("leeway-seconds", 0, "clock leeway in seconds (default 30)")
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			a := tenant.AuthSettings{Issuer: *iss, Audience: *aud, LeewaySeconds: *leeway}
			modes := 0
			if *gen || len(secrets) > 0 {
				modes++
				a.Mode = tenant.AuthHS256
				a.HS256Secrets = secrets
				if *gen {
					s, err := tenant.GenerateHS256Secret()
					if err != nil {
						return err
					}
					a.HS256Secrets = append(a.HS256Secrets, s)
					fmt.Fprintf(c.out, "generated HS256 secret (shown only now):\n\n  %s\n\n", s)
				}
			}
			if len(keyFiles) > 0 {
				modes++
				a.Mode = tenant.AuthPublicKeys
				for _, f := range keyFiles {
					b, err := os.ReadFile(f)
					if err != nil {
						return fmt.Errorf("read public key: %w", err)
					}
					a.PublicKeysPEM = append(a.PublicKeysPEM, string(b))
				}
			}
			if *jwks != "" {
				modes++
				a.Mode, a.JWKSURL = tenant.AuthJWKS, *jwks
			}
			if modes != 1 {
				return usageError("choose exactly one of --generate-hs256/--hs256-secret, --public-key-file, --jwks-url")
			}
			if err := c.store.SetAuth(c.ctx, t.ID, a, c.actor); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "end-user auth of %s is now %s\n", t.Slug, a.Mode)
			return nil
		}
	},
	"auth show": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			a, updated, err := c.store.Auth(c.ctx, t.ID)
			if errors.Is(err, tenant.ErrNotFound) {
				fmt.Fprintf(c.out, "%s has no end-user auth yet: syncplane tenant auth set %s --generate-hs256\n", t.Slug, t.Slug)
				return nil
			}
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(a.Redacted(), "", "  ")
			fmt.Fprintf(c.out, "%s\n(updated %s)\n", b, updated.UTC().Format(time.RFC3339))
			return nil
		}
	},
	"auth reseal": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			if err := wantArgs(pos); err != nil {
				return err
			}
			if !c.store.Sealing() {
				return errors.New("SYNCPLANE_SEAL_KEYS is not set: there is no key to seal with")
			}
			resealed, checked, err := c.store.ResealAuth(c.ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "resealed the HS256 secrets of %d of %d tenants with end-user auth\n", resealed, checked)
			return nil
		}
	},
	"tables apply": func(fs *flag.FlagSet) func(*cli, []string) error {
		file := fs.String("file", "", "table definition document (JSON or YAML)")
		breaking := fs.Bool("allow-breaking", false, "allow changes that break clients of the current version")
		dry := fs.Bool("dry-run", false, "show the diff and DDL, change nothing")
		yes := fs.Bool("yes", false, "apply without asking")
		return func(c *cli, pos []string) error {
			if err := wantArgs(pos, "<slug>"); err != nil {
				return err
			}
			if *file == "" {
				return usageError("--file is required")
			}
			t, err := c.tenant(pos[0])
			if err != nil {
				return err
			}
			data, err := os.ReadFile(*file)
			if err != nil {
				return fmt.Errorf("read definition: %w", err)
			}
			def, err := tenant.ParseDefinition(data)
			if err != nil {
				return err
			}
			plan, err := c.store.ApplyTables(c.ctx, t.ID, def, tenant.ApplyOptions{AllowBreaking: *breaking, DryRun: true}, c.actor)
			if err != nil {
				return err
			}
			if len(plan.Changes) == 0 {
				fmt.Fprintf(c.out, "no changes: %s is already at this definition (version %d)\n", t.Slug, plan.Version)
				return nil
			}
			fmt.Fprintf(c.out, "changes against version %d:\n%s\n", plan.Version, tenant.Describe(plan.Changes))
			if *dry {
				fmt.Fprintf(c.out, "DDL:\n%s;\n", strings.Join(plan.DDL, ";\n"))
				return nil
			}
			if !*yes && !confirm(c.in, c.out, fmt.Sprintf("apply as version %d? [y/N] ", plan.Version+1)) {
				return errors.New("not applied")
			}
			res, err := c.store.ApplyTables(c.ctx, t.ID, def, tenant.ApplyOptions{AllowBreaking: *breaking}, c.actor)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "applied tables of %s as version %d\n", t.Slug, res.Version)
			return nil
		}
	},
	"tables show": func(fs *flag.FlagSet) func(*cli, []string) error {
		ver := fs.Int("version", 0, "version to show (default: current)")
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			versions, err := c.store.TableVersions(c.ctx, t.ID)
			if err != nil {
				return err
			}
			for _, v := range versions {
				if *ver == 0 || v.Version == *ver {
					b, _ := json.MarshalIndent(v.Schema.Definition(), "", "  ")
					fmt.Fprintf(c.out, "# %s tables, version %d\n%s\n", t.Slug, v.Version, b)
					return nil
				}
			}
			if *ver == 0 {
				fmt.Fprintf(c.out, "%s has no tables yet: syncplane tenant tables apply %s --file tables.json\n", t.Slug, t.Slug)
				return nil
			}
			return fmt.Errorf("%s has no table version %d", t.Slug, *ver)
		}
	},
	"tables versions": func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			versions, err := c.store.TableVersions(c.ctx, t.ID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tTABLES\tBREAKING\tAPPLIED BY\tAPPLIED")
			for _, v := range versions {
				fmt.Fprintf(tw, "%d\t%s\t%t\t%s\t%s\n", v.Version, tableNames(v.Schema), v.Breaking, v.AppliedBy,
					v.AppliedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		}
	},
}

func init() {
	tenantCommands["quota show"] = func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			q, err := c.store.Quota(c.ctx, t, c.store.Plans())
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(q.Limits, "", "  ")
			o, _ := json.Marshal(q.Override)
			fmt.Fprintf(c.out, "plan %s, overrides %s\neffective limits (0 = unlimited):\n%s\n", q.Plan, o, b)
			return nil
		}
	}
	tenantCommands["quota set"] = func(fs *flag.FlagSet) func(*cli, []string) error {
		plan := fs.String("plan", "", "switch the tenant to this plan")
		ints := map[string]*int64{}
		for _, name := range []string{"request-burst", "max-active-devices", "max-rows", "max-storage-bytes",
			"max-bundle-bytes", "max-rows-per-chunk", "max-watchers"} {
			ints[name] = fs.Int64(name, -2, "override; 0 = unlimited, -1 = the plan's value")
		}
		rps := fs.Float64("requests-per-second", -2, "override; 0 = unlimited, -1 = the plan's value")
		return func(c *cli, pos []string) error {
			t, err := c.tenantArg(pos)
			if err != nil {
				return err
			}
			q, err := c.store.Quota(c.ctx, t, c.store.Plans())
			if err != nil {
				return err
			}
			o := q.Override
			var bad error
			fs.Visit(func(f *flag.Flag) {
				v, err := strconv.ParseFloat(f.Value.String(), 64)
				if f.Name != "plan" && (err != nil || v < -1) && bad == nil {
					bad = &tenant.ValidationError{Field: f.Name, Message: f.Name + " must be 0 (unlimited) or positive, or -1 for the plan's value"}
				}
			})
			if bad != nil {
				return bad
			}
			pick := func(dst **int64, flag string) {
				switch v := *ints[flag]; {
				case v == -1:
					*dst = nil
				case v >= 0:
					*dst = &v
				}
			}
			pick(&o.RequestBurst, "request-burst")
			pick(&o.MaxActiveDevices, "max-active-devices")
			pick(&o.MaxRows, "max-rows")
			pick(&o.MaxStorageBytes, "max-storage-bytes")
			pick(&o.MaxBundleBytes, "max-bundle-bytes")
			pick(&o.MaxRowsPerChunk, "max-rows-per-chunk")
			pick(&o.MaxWatchers, "max-watchers")
			switch v := *rps; {
			case v == -1:
				o.RequestsPerSecond = nil
			case v >= 0:
				o.RequestsPerSecond = &v
			}
			if err := c.store.SetQuota(c.ctx, t.ID, *plan, o, c.store.Plans(), c.actor); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "quotas of %s updated; every replica applies them within a second\n", t.Slug)
			return nil
		}
	}
	tenantCommands["usage"] = func(fs *flag.FlagSet) func(*cli, []string) error {
		now := time.Now().UTC()
		from := fs.String("from", now.AddDate(0, 0, -30).Format(time.DateOnly), "first day (UTC), inclusive")
		to := fs.String("to", now.AddDate(0, 0, 1).Format(time.DateOnly), "last day (UTC), exclusive")
		format := fs.String("format", "csv", "csv or json")
		return func(c *cli, pos []string) error {
			if len(pos) > 1 {
				return usageError("want at most one tenant slug")
			}
			var id int64
			if len(pos) == 1 {
				t, err := c.tenant(pos[0])
				if err != nil {
					return err
				}
				id = t.ID
			}
			f, err := time.Parse(time.DateOnly, *from)
			if err != nil {
				return usageError("--from must be a date like 2026-11-01")
			}
			tt, err := time.Parse(time.DateOnly, *to)
			if err != nil {
				return usageError("--to must be a date like 2026-12-01")
			}
			rows, err := c.store.Usage(c.ctx, id, f, tt)
			if err != nil {
				return err
			}
			switch *format {
			case "json":
				enc := json.NewEncoder(c.out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			case "csv":
				return tenant.WriteUsageCSV(c.out, rows)
			}
			return usageError("--format must be csv or json")
		}
	}
}

func stateCommand(state tenant.State) tenantCommand {
	return func(fs *flag.FlagSet) func(*cli, []string) error {
		return func(c *cli, pos []string) error {
			if err := wantArgs(pos, "<slug>"); err != nil {
				return err
			}
			t, err := c.store.SetState(c.ctx, pos[0], state, c.actor)
			if errors.Is(err, tenant.ErrNotFound) {
				return fmt.Errorf("no tenant %q", pos[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "tenant %s is now %s\n", t.Slug, t.State)
			return nil
		}
	}
}

func tableNames(s *tenant.Schema) string {
	var names []string
	for _, t := range s.Tables() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func confirm(in io.Reader, out io.Writer, prompt string) bool {
	fmt.Fprint(out, prompt)
	line, _ := bufio.NewReader(in).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}
