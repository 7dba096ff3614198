// Package modelserver is Berth's reference model server: it loads a small
// gradient-boosted tree model (XGBoost binary format, evaluated in pure Go by
// github.com/dmitryikh/leaves) and serves it over HTTP with the contract
// berth-fe uses (POST /score) and the Open Inference Protocol v2 (/v2/...).
//
// The package embeds the iris classifier from models/iris, so Builtin gives a
// newcomer a real model to score with nothing else installed.
package modelserver

import (
	"bufio"
	"bytes"
	"cmp"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"

	"github.com/dmitryikh/leaves"
)

// FormatXGBoostBinary is the only model format Load understands: XGBoost's
// legacy binary format, as written by Booster.save_model("model.bin").
const FormatXGBoostBinary = "xgboost-binary"

// MetadataFile is the name of the metadata file Load expects in a model directory.
const MetadataFile = "metadata.json"

// maxModelBytes bounds the model file Load reads.
const maxModelBytes = 64 << 20

//go:embed iris/model.bin iris/metadata.json
var builtinFS embed.FS

// Metadata describes a model directory; it is stored as metadata.json.
type Metadata struct {
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Format    string   `json:"format"`
	ModelFile string   `json:"model_file"`
	Objective string   `json:"objective"`
	Features  []string `json:"features"`
	Classes   []string `json:"classes"`
}

// Model is a loaded classifier. It is safe for concurrent use.
type Model struct {
	meta Metadata
	ens  *leaves.Ensemble
}

// Load reads metadata.json and the model file it names from dir.
func Load(dir string) (*Model, error) {
	return LoadFS(os.DirFS(dir))
}

// Builtin returns the iris classifier embedded in the binary (a copy of models/iris).
func Builtin() (*Model, error) { return LoadFS(BuiltinFiles()) }

// LoadFS is Load for any file system, with the model files at its root.
func LoadFS(fsys fs.FS) (*Model, error) {
	raw, err := fs.ReadFile(fsys, MetadataFile)
	if err != nil {
		return nil, fmt.Errorf("modelserver: read metadata: %w", err)
	}
	var meta Metadata
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("modelserver: parse %s: %w", MetadataFile, err)
	}
	switch {
	case meta.Name == "":
		return nil, fmt.Errorf("modelserver: %s: name is empty", MetadataFile)
	case meta.Format != FormatXGBoostBinary:
		return nil, fmt.Errorf("modelserver: %s: format %q is not supported (want %q)", MetadataFile, meta.Format, FormatXGBoostBinary)
	case meta.Objective != "multi:softprob" && meta.Objective != "multi:softmax":
		return nil, fmt.Errorf("modelserver: %s: objective %q is not supported (want multi:softprob or multi:softmax)", MetadataFile, meta.Objective)
	case len(meta.Features) == 0:
		return nil, fmt.Errorf("modelserver: %s: features is empty", MetadataFile)
	case len(meta.Classes) < 2:
		return nil, fmt.Errorf("modelserver: %s: need at least 2 classes, got %d", MetadataFile, len(meta.Classes))
	}
	meta.Version = cmp.Or(meta.Version, "1")
	meta.ModelFile = cmp.Or(meta.ModelFile, "model.bin")
	if !fs.ValidPath(meta.ModelFile) || path.Dir(meta.ModelFile) != "." {
		return nil, fmt.Errorf("modelserver: %s: model_file %q must be a plain file name", MetadataFile, meta.ModelFile)
	}
	f, err := fsys.Open(meta.ModelFile)
	if err != nil {
		return nil, fmt.Errorf("modelserver: open model: %w", err)
	}
	defer f.Close()
	raw, err = io.ReadAll(io.LimitReader(f, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("modelserver: read model: %w", err)
	}
	if len(raw) > maxModelBytes {
		return nil, fmt.Errorf("modelserver: model file %s is larger than %d bytes", meta.ModelFile, maxModelBytes)
	}
	data, err := normalizeXGBoostBinary(raw, len(meta.Classes))
	if err != nil {
		return nil, fmt.Errorf("modelserver: %s: %w", meta.ModelFile, err)
	}
	ens, err := leaves.XGEnsembleFromReader(bufio.NewReader(bytes.NewReader(data)), false)
	if err != nil {
		return nil, fmt.Errorf("modelserver: %s: %w", meta.ModelFile, err)
	}
	if got := ens.NRawOutputGroups(); got != len(meta.Classes) {
		return nil, fmt.Errorf("modelserver: model has %d output groups but metadata lists %d classes", got, len(meta.Classes))
	}
	if got := ens.NFeatures(); got > len(meta.Features) {
		return nil, fmt.Errorf("modelserver: model uses %d features but metadata lists %d", got, len(meta.Features))
	}
	return &Model{meta: meta, ens: ens}, nil
}

// Layout of the XGBoost legacy binary header (see leaves/internal/xgbin):
// LearnerModelParam (34 x 4 bytes), objective name, booster name (each a
// uint64 length then bytes), then GBTreeModelParam whose num_output_group
// sits 24 bytes in; then per tree a TreeParam, its nodes (20 bytes each) and
// node statistics (16 bytes each); then one int32 of tree info per tree.
const (
	learnerParamSize   = 34 * 4
	learnerNumClassOff = 8
	gbtreeOutGroupOff  = 24
	gbtreeParamSize    = 160
	treeParamSize      = 37 * 4
	treeNumNodesOff    = 4
	treeLeafVecOff     = 20
	nodeSize           = 20
	nodeLeftOff        = 4
	nodeInfoOff        = 16
	nodeStatSize       = 16
	maxHeaderString    = 256
)

// normalizeXGBoostBinary rewrites a model saved by XGBoost >= 1.0 into the
// layout of XGBoost <= 0.90 that leaves reads: it drops the leading "binf"
// magic and fills in GBTreeModelParam.num_output_group, which XGBoost 1.x
// leaves at 1 (it keeps the class count in LearnerModelParam instead); and it
// lowers every split threshold by one float32 step, because leaves tests
// x <= threshold where XGBoost tests x < threshold. Walking the file also
// checks every length and count against the file size, so a corrupt file is
// rejected here rather than making leaves allocate a huge buffer.
func normalizeXGBoostBinary(in []byte, nClasses int) ([]byte, error) {
	data := bytes.Clone(in)
	data = bytes.TrimPrefix(data, []byte("binf"))
	if len(data) > 0 && data[0] == '{' {
		return nil, errors.New("this is an XGBoost JSON model; save it with a .bin (binary) name instead")
	}
	if len(data) < learnerParamSize {
		return nil, errors.New("too short for an XGBoost binary model")
	}
	numClass := int32(binary.LittleEndian.Uint32(data[learnerNumClassOff:]))
	off := learnerParamSize
	for _, what := range []string{"objective", "booster"} {
		if len(data) < off+8 {
			return nil, fmt.Errorf("truncated before %s name", what)
		}
		n := binary.LittleEndian.Uint64(data[off:])
		if n > maxHeaderString || uint64(len(data)-off-8) < n {
			return nil, fmt.Errorf("corrupt %s name (length %d)", what, n)
		}
		off += 8 + int(n)
	}
	if len(data) < off+gbtreeOutGroupOff+4 {
		return nil, errors.New("truncated tree parameters")
	}
	if int(numClass) > 1 && int(numClass) != nClasses {
		return nil, fmt.Errorf("model has %d classes but metadata lists %d", numClass, nClasses)
	}
	groups := binary.LittleEndian.Uint32(data[off+gbtreeOutGroupOff:])
	if numClass > 1 && groups <= 1 {
		binary.LittleEndian.PutUint32(data[off+gbtreeOutGroupOff:], uint32(numClass))
	}
	if len(data) < off+gbtreeParamSize {
		return nil, errors.New("truncated tree parameters")
	}
	numTrees := int32(binary.LittleEndian.Uint32(data[off:]))
	off += gbtreeParamSize
	if numTrees < 1 {
		return nil, fmt.Errorf("model has %d trees", numTrees)
	}
	for i := 0; i < int(numTrees); i++ {
		if len(data) < off+treeParamSize {
			return nil, fmt.Errorf("truncated at tree %d", i)
		}
		numNodes := int32(binary.LittleEndian.Uint32(data[off+treeNumNodesOff:]))
		leafVec := int32(binary.LittleEndian.Uint32(data[off+treeLeafVecOff:]))
		off += treeParamSize
		if numNodes < 1 || len(data)-off < int(numNodes)*(nodeSize+nodeStatSize) {
			return nil, fmt.Errorf("tree %d: corrupt node count %d", i, numNodes)
		}
		for j := 0; j < int(numNodes); j++ {
			node := data[off+j*nodeSize:]
			if int32(binary.LittleEndian.Uint32(node[nodeLeftOff:])) == -1 {
				continue // leaf: Info is the leaf value
			}
			// XGBoost goes left when x < threshold, leaves when
			// x <= threshold. Both compare float32 values here (Predict
			// rounds inputs to float32), so lowering the threshold by one
			// float32 step makes leaves decide exactly as XGBoost does.
			t := math.Float32frombits(binary.LittleEndian.Uint32(node[nodeInfoOff:]))
			binary.LittleEndian.PutUint32(node[nodeInfoOff:], math.Float32bits(math.Nextafter32(t, float32(math.Inf(-1)))))
		}
		off += int(numNodes) * (nodeSize + nodeStatSize)
		if leafVec > 0 {
			if len(data) < off+8 {
				return nil, fmt.Errorf("tree %d: truncated leaf vector", i)
			}
			n := binary.LittleEndian.Uint64(data[off:])
			if n > uint64(len(data)-off-8)/4 {
				return nil, fmt.Errorf("tree %d: corrupt leaf vector length %d", i, n)
			}
			off += 8 + int(n)*4
		}
	}
	if len(data) < off+int(numTrees)*4 {
		return nil, errors.New("truncated tree info")
	}
	return data, nil
}

// Metadata returns a copy of the model's metadata.
func (m *Model) Metadata() Metadata {
	md := m.meta
	md.Features = append([]string(nil), m.meta.Features...)
	md.Classes = append([]string(nil), m.meta.Classes...)
	return md
}

// NumFeatures is the number of values each input row must have.
func (m *Model) NumFeatures() int { return len(m.meta.Features) }

// Predict scores rows and returns, per row, the class probabilities (in the
// order of Metadata().Classes) and the most probable class name.
func (m *Model) Predict(rows [][]float64) ([][]float64, []string, error) {
	nf := len(m.meta.Features)
	for i, r := range rows {
		if len(r) != nf {
			return nil, nil, fmt.Errorf("row %d has %d features, want %d (%v)", i, len(r), nf, m.meta.Features)
		}
	}
	nc := len(m.meta.Classes)
	probs := make([][]float64, len(rows))
	labels := make([]string, len(rows))
	fvals := make([]float64, nf)
	for i, r := range rows {
		// XGBoost evaluates features in float32; round the same way so
		// values near a split threshold go to the same side.
		for j, v := range r {
			fvals[j] = float64(float32(v))
		}
		out := make([]float64, nc)
		if err := m.ens.Predict(fvals, 0, out); err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", i, err)
		}
		softmax(out)
		best := 0
		for k := range out {
			if out[k] > out[best] {
				best = k
			}
		}
		probs[i] = out
		labels[i] = m.meta.Classes[best]
	}
	return probs, labels, nil
}

func softmax(x []float64) {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, v)
	}
	var sum float64
	for i, v := range x {
		x[i] = math.Exp(v - mx)
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// BuiltinFiles is the embedded iris model directory (metadata.json and
// model.bin), for registering it as a model.
func BuiltinFiles() fs.FS {
	sub, err := fs.Sub(builtinFS, "iris")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return sub
}
