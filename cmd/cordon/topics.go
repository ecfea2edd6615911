package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// cmdTopics prints the topic list (kafka.Topics.Specs), or the script
// that creates it with the Kafka CLI.
func cmdTopics(args []string) error {
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	script := fs.Bool("script", false, "print deploy/kafka/topics.sh (the Kafka CLI commands creating every topic)")
	acls := fs.Bool("acls", false, "print deploy/kafka/acls.sh (the Kafka CLI commands granting each role's principal its rights)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *script {
		_, err := fmt.Print(kafka.Script())
		return err
	}
	if *acls {
		_, err := fmt.Print(kafka.ACLScript())
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tCONFIG KEY\tPARTITIONS\tCLEANUP\tRETENTION MS\tTRANSACTIONAL\tSIGNED BY\tWRITERS\tREADERS\tHOLDS")
	for _, s := range kafka.DefaultTopics().Specs() {
		cleanup, retention := "delete", fmt.Sprint(s.RetentionMs)
		if s.Compact {
			cleanup, retention = "compact", "-"
		}
		key := "kafka.topics." + s.Key
		if s.Key == "" {
			key = "(from deposits)"
		}
		signed := string(kafka.DefaultTopics().Signer(s.Name))
		if signed == "" {
			signed = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\t%s\t%s\t%s\t%s\n", s.Name, key, s.Partitions, cleanup, retention, s.Transactional, signed,
			orDash(strings.Join(s.Writers, ",")), orDash(strings.Join(s.Readers, ",")), s.Doc)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
