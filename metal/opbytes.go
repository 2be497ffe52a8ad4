package metal

import "fmt"

// Ops lists the ops CompareOp runs: each Metal kernel against the same op
// built from MPSGraph.
var Ops = []string{"embed", "layer_norm", "masked_softmax", "bias_gelu"}

// OpBytes is the least number of bytes op must read and write at rows x cols
// on CompareOp's inputs (f16: 2-byte activations and parameters, else 4;
// token ids, the mask and lengths are 4 bytes): the numerator of a GB/s
// figure. It is plain arithmetic, on every platform.
//
//	embed           rows tokens of hidden cols: ids + type ids, the gathered
//	                word, position and token-type rows, gamma, beta, output
//	layer_norm      rows x cols in and out, gamma and beta
//	masked_softmax  rows x cols scores in and probabilities out, one length
//	bias_gelu       rows x cols in and out, the bias
func OpBytes(op string, f16 bool, rows, cols int) (int64, error) {
	if rows < 1 || cols < 1 {
		return 0, fmt.Errorf("metal: op bytes: %s: rows %d, cols %d, want both >= 1", op, rows, cols)
	}
	es := int64(4)
	if f16 {
		es = 2
	}
	n, r, c := int64(rows)*int64(cols), int64(rows), int64(cols)
	switch op {
	case "embed":
		return 8*r + es*(4*n+2*c), nil
	case "layer_norm":
		return es * (2*n + 2*c), nil
	case "masked_softmax":
		return es*2*n + 4, nil
	case "bias_gelu":
		return es * (2*n + c), nil
	}
	return 0, fmt.Errorf("metal: op bytes: unknown op %q (embed, layer_norm, masked_softmax, bias_gelu)", op)
}
