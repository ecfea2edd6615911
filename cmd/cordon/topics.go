package main

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/cordonhq/cordon/ingest/kafka"
)

// cmdTopics prints the topic list (kafka.Topics.Specs), or the script
// that creates it with the Kafka CLI.
func cmdTopics(args []string) error {
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	script := fs.Bool("script", false, "print deploy/kafka/topics.sh (the Kafka CLI commands creating every topic)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *script {
		_, err := fmt.Print(kafka.Script())
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tCONFIG KEY\tPARTITIONS\tCLEANUP\tRETENTION MS\tTRANSACTIONAL\tHOLDS")
	for _, s := range kafka.DefaultTopics().Specs() {
		cleanup, retention := "delete", fmt.Sprint(s.RetentionMs)
		if s.Compact {
			cleanup, retention = "compact", "-"
		}
		key := "kafka.topics." + s.Key
		if s.Key == "" {
			key = "(from deposits)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\t%s\n", s.Name, key, s.Partitions, cleanup, retention, s.Transactional, s.Doc)
	}
	return tw.Flush()
}
