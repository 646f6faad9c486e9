package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/mgmtapi"
	"github.com/meridiandns/meridian/store/postgres"
)

// tokenCmd implements "meridianctl token create|list|revoke": the bearer
// tokens of the health-agent API (meridian-checker --listen).
func tokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: meridianctl token <command> [flags]\n\n"+
			"Manage the tokens of the health-agent API.\n\n"+
			"Commands:\n"+
			"  create --pool POOL [--label L]     an agent token, for the endpoints of one pool\n"+
			"  create --operator [--label L]      an operator token, for every pool and admin states\n"+
			"  create --api --scope S [--label L] a management API token (scopes: read, admin, zone:ORIGIN)\n"+
			"  list                               the tokens (never their secrets)\n"+
			"  revoke ID                          revoke a token for good\n")
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "create":
		return tokenCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return tokenList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return tokenRevoke(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "meridianctl token: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "token create"
	f := newFlags(name, "--pool POOL | --operator | --api --scope SCOPE... [--label TEXT] [flags]",
		"Create a token and print it, once: only its hash is stored. An agent token (--pool)\n"+
			"reports on the endpoints of one pool; an operator token (--operator) acts on any pool,\n"+
			"admin states included; an API token (--api) uses the management API within its scopes\n"+
			"(read: every zone; zone:ORIGIN: read and write that zone; admin: everything).", stderr)
	pool := f.String("pool", "", "the pool of an agent token (www.example.com.)")
	operator := f.Bool("operator", false, "an operator token, for every pool")
	api := f.Bool("api", false, "a management API token")
	scopes := f.StringSlice("scope", nil, "a scope of an API token: read, admin or zone:ORIGIN (repeatable)")
	label := f.String("label", "", "what the token is for; the audit log names operator tokens by it")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	count := 0
	for _, given := range []bool{*pool != "", *operator, *api} {
		if given {
			count++
		}
	}
	if count != 1 || (len(*scopes) > 0) != *api {
		fmt.Fprintf(stderr, "meridianctl %s: give one of --pool, --operator or --api; --scope goes with --api\n", name)
		return 2
	}
	if *api {
		var canon []string
		for _, s := range *scopes {
			c, err := mgmtapi.ParseScope(s)
			if err != nil {
				fmt.Fprintf(stderr, "meridianctl %s: %v\n", name, err)
				return 2
			}
			canon = append(canon, c)
		}
		return f.withConn(ctx, func(conn *pgx.Conn) error {
			token, id, err := postgres.CreateAPIToken(ctx, conn, *label, canon)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "Token %d (api: %s) created. It is shown only now: store it safely.\n", id, strings.Join(canon, ", "))
			fmt.Fprintln(stdout, token)
			return nil
		})
	}
	kind := postgres.TokenAgent
	if *operator {
		kind = postgres.TokenOperator
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		token, id, err := postgres.CreateToken(ctx, conn, kind, *pool, *label)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Token %d (%s) created. It is shown only now: store it safely.\n", id, kind)
		fmt.Fprintln(stdout, token)
		return nil
	})
}

func tokenList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "token list"
	f := newFlags(name, "[flags]", "List the tokens of the agent API, revoked ones too; never their secrets.", stderr)
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		ts, err := postgres.ListTokens(ctx, conn)
		if err != nil {
			return err
		}
		tw := table(stdout, "ID", "KIND", "POOL/SCOPES", "LABEL", "CREATED", "REVOKED")
		for _, t := range ts {
			row(tw, t.ID, t.Kind, dash(cmp.Or(t.Pool, strings.Join(t.Scopes, ","))), dash(t.Label), when(t.Created), when(t.Revoked))
		}
		return tw.Flush()
	})
}

func tokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "token revoke"
	f := newFlags(name, "ID [flags]", "Revoke a token for good: the API refuses it from now on.", stderr)
	arg, code, ok := f.parseOne(args, stderr)
	if !ok {
		return code
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(stderr, "meridianctl %s: %q is no token id (see meridianctl token list)\n", name, arg)
		return 2
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		if err := postgres.RevokeToken(ctx, conn, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %d revoked\n", id)
		return nil
	})
}
