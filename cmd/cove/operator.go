package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/sdk/client"
)

// operatorUsage lists an operator's HE commands: its key pair stays in a
// file of its own (mode 0600); releases and query replies open locally.
const operatorUsage = `  cove operator keygen -setup SETUP.json -out KEY          an HE key pair (the secret never leaves KEY); prints the public key's file
  cove operator open -key KEY -release RELEASE.json [-json]  decrypt a released HE result locally (DecodePublic)
`

func operatorCmd(_ context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("operator: no subcommand\n" + operatorUsage)
	}
	fs := flag.NewFlagSet("operator "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "keygen":
		setup := fs.String("setup", "", "the HE setup (JSON, as `cove provider setup` or GET /v1/he/setups/NAME writes it)")
		keyOut := fs.String("out", "", "the key file to create (mode 0600)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "setup", "out"); err != nil {
			return err
		}
		b, err := readLimited(*setup, maxSetupBytes)
		if err != nil {
			return err
		}
		var su client.HESetup
		if err := json.Unmarshal(b, &su); err != nil {
			return fmt.Errorf("%w: %s: %v", cove.ErrInvalid, *setup, err)
		}
		p, err := he.NewParams(su.Params)
		if err != nil {
			return err
		}
		op, err := he.NewOperator(p)
		if err != nil {
			return err
		}
		if err := client.WriteOperatorKey(*keyOut, op); err != nil {
			return err
		}
		pub, err := op.Key().MarshalBinary()
		if err != nil {
			return err
		}
		if err := writeBytes(*keyOut+".pub", pub); err != nil {
			return err
		}
		h := op.Key().Hash()
		fmt.Fprintf(out, "key pair in %s; public key in %s.pub (register it: POST /v1/he/recipients); recipient %x\n", *keyOut, *keyOut, h)
		return nil
	case "open":
		keyFile := fs.String("key", "", "the operator's key file")
		relFile := fs.String("release", "", "the release (JSON, as GET /v1/jobs/ID/release returns it)")
		asJSON := fs.Bool("json", false, "print the opened release as JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := required(fs, "key", "release"); err != nil {
			return err
		}
		op, err := client.ReadOperatorKey(*keyFile)
		if err != nil {
			return err
		}
		b, err := readLimited(*relFile, maxHEFile)
		if err != nil {
			return err
		}
		var rel client.Release
		if err := json.Unmarshal(b, &rel); err != nil {
			return fmt.Errorf("%w: %s: %v", cove.ErrInvalid, *relFile, err)
		}
		opened, err := client.OpenHE(op, &rel)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(opened)
		}
		for _, o := range opened.Outputs {
			fmt.Fprintf(out, "%s (%s, ε %g)\n", o.Name, o.Aggregate, o.Epsilon)
			for _, r := range o.Rows {
				fmt.Fprintf(out, "  %-20s %14.4f  ±%.4g sd  95%% CI [%.4f, %.4f]\n", strings.Join(r.Key, "/"), r.Value, r.NoiseStdDev, r.CILow, r.CIHigh)
			}
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(out, operatorUsage)
		return nil
	}
	return fmt.Errorf("operator: unknown subcommand %q\n%s", args[0], operatorUsage)
}
