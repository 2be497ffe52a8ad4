package pairio_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gomps/gomps/gomps/pairio"
)

// Read TSV pairs, group them by query, score them, and write a reranked TREC
// run. Equal scores are ordered by docid descending, as trec_eval orders them.
func Example() {
	in := "query\tpassage\nberlin population\tBerlin has 3.7 million people.\nberlin population\tBerlin is a city.\n"
	r := pairio.NewTSVReader(strings.NewReader(in), "in.tsv", pairio.Options{})
	w := pairio.NewTRECWriter(os.Stdout, pairio.WriterOptions{Tag: "example"})
	groups := pairio.Groups(r)
	for q := 1; ; q++ {
		g, err := groups.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		scored := make([]pairio.Scored, len(g))
		for i, it := range g {
			it.QID, it.DocID = fmt.Sprint(q), fmt.Sprintf("line%d", it.Pos.Line)
			scored[i] = pairio.Scored{Item: it, Score: 1} // a tie
		}
		if err := w.WriteGroup(scored); err != nil {
			fmt.Println(err)
			return
		}
	}
	w.Flush()
	// Output:
	// 1 Q0 line3 1 1 example
	// 1 Q0 line2 2 1 example
}
