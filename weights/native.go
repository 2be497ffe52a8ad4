package weights

import (
	"encoding/binary"
	"hash/crc32"
	"math"
)

// Constants of the native format v1 (FORMAT.md).
const (
	NativeMagic     = "GOMPSWTS"
	NativeVersion   = 1
	NativeAlignment = 16384
	nativeArchBert  = 1

	preambleSize     = 256
	tableEntrySize   = 128
	maxHeaderSize    = 1 << 20
	nameFieldSize    = 80
	tensorNameSize   = 64
	maxNativeFileLen = math.MaxInt64 - NativeAlignment
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c returns the CRC-32C (Castagnoli) of b.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// alignUp rounds x up to a multiple of NativeAlignment; ok is false on
// overflow.
func alignUp(x uint64) (uint64, bool) {
	r := (x + NativeAlignment - 1) &^ (NativeAlignment - 1)
	return r, r >= x && x <= maxNativeFileLen
}

// Byte offsets of the preamble fields.
const (
	offMagic       = 0
	offVersion     = 8
	offHeaderSize  = 12
	offHeaderCRC   = 16
	offAlignment   = 20
	offFileSize    = 24
	offDType       = 32
	offNTensors    = 36
	offArch        = 40
	offVocab       = 44
	offHidden      = 48
	offLayers      = 52
	offHeads       = 56
	offInter       = 60
	offMaxPos      = 64
	offTypeVocab   = 68
	offPadID       = 72
	offReserved76  = 76
	offEps         = 80
	offTokOffset   = 88
	offTokSize     = 96
	offTokSHA      = 104
	offSourceSHA   = 136
	offName        = 168
	offReserved248 = 248
)

// Byte offsets of a tensor table entry's fields.
const (
	teName      = 0
	teNDim      = 64
	teReserved  = 68
	teShape     = 72
	teOffset    = 88
	teSize      = 96
	teCRC       = 104
	teReserved2 = 108
)

// headerCRC computes the header checksum: CRC-32C of header with the
// checksum field read as zero.
func headerCRC(header []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, header[:offHeaderCRC])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, header[offHeaderCRC+4:])
}

var le = binary.LittleEndian
