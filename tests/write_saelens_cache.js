// Writes a small SAELens activation cache with apache-arrow (an Arrow implementation independent
// of sweep's reader), laid out as `datasets` saves CacheActivationsRunner's output: a directory with
// dataset_info.json, state.json and data-NNNNN-of-NNNNN.arrow IPC streams, one row per sequence,
// an Array2D(context_size, d_in) column named after the hook (list<list<float>>) and token_ids
// (fixed_size_list<int32>[context_size]). Next to it, rows.npy and tokens.npy hold the same numbers
// in row order (sequence by sequence, position by position) for the tests to compare with.
//
// node write_saelens_cache.js OUT_DIR '{"sequences": [5, 3], "context_size": 4, "d_in": 8,
//   "dtype": "float32", "hook": "blocks.0.hook_resid_post", "batch_sequences": 2, "seed": 1,
//   "compress": false, "leaf": "float32"}'
// sequences: sequences per shard; batch_sequences: sequences per record batch; leaf: the Arrow type
// written (default: dtype), so a schema can disagree with dataset_info.json; compress: the record
// batches say their buffers are LZ4-compressed.
'use strict';
const fs = require('fs');
const path = require('path');
const arrow = require('apache-arrow');

const [outDir, optionsJson] = process.argv.slice(2);
const o = Object.assign({dtype: 'float32', batch_sequences: 2, seed: 1, compress: false, tokens: true},
                        JSON.parse(optionsJson));
const leafName = o.leaf || o.dtype;
const ctx = o.context_size, d = o.d_in;

// A fixed pseudo-random stream (xorshift32), so every run writes the same numbers.
let state = (o.seed * 2654435761) >>> 0 || 1;
function uniform() {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state / 4294967296;
}

const leafTypes = {float32: () => new arrow.Float32(), float16: () => new arrow.Float16(), float64: () => new arrow.Float64()};
const leafType = leafTypes[leafName]();
const innerType = new arrow.List(new arrow.Field('item', leafType, true));
const outerType = new arrow.List(new arrow.Field('item', innerType, true));
const tokenType = new arrow.FixedSizeList(ctx, new arrow.Field('item', new arrow.Int32(), true));
// datasets stores Array2D as an Arrow extension type: its storage type, named in the field's metadata.
const array2d = new Map([['ARROW:extension:name', 'datasets.features.features.Array2DExtensionType'],
                         ['ARROW:extension:metadata', JSON.stringify([[ctx, d], o.dtype])]]);
const fields = [new arrow.Field(o.hook, outerType, true, array2d)];
if (o.tokens) fields.push(new arrow.Field('token_ids', tokenType, true));
const features = {[o.hook]: {shape: [ctx, d], dtype: o.dtype, _type: 'Array2D'}};
if (o.tokens) features.token_ids = {feature: {dtype: 'int32', _type: 'Value'}, length: ctx, _type: 'Sequence'};
const schema = new arrow.Schema(fields, new Map([['huggingface', JSON.stringify({info: {features}})]]));

if (o.compress) {
  // A stand-in LZ4 codec whose "frames" (a frame header, then the bytes) never come out shorter,
  // so apache-arrow stores each buffer as is behind its length prefix; the batches are still
  // marked LZ4-compressed, which is what a reader must notice.
  const frame = (b) => Uint8Array.from([4, 34, 77, 24, 0x40, 0, 0, ...b]);
  arrow.compressionRegistry.set(arrow.CompressionType.LZ4_FRAME, {encode: frame, decode: (b) => b.subarray(7)});
}

// The values of n sequences: activations in the leaf's own storage (float16 as its bits), and
// token ids.
const storage = {float32: Float32Array, float16: Uint16Array, float64: Float64Array}[leafName];
function makeValues(n) {
  const acts = new storage(n * ctx * d);
  for (let i = 0; i < acts.length; ++i) {
    const value = (uniform() * 2 - 1) * (1 + (i % d) / d);
    acts[i] = leafName === 'float16' ? arrow.util.float64ToUint16(value) : value;
  }
  const tokens = new Int32Array(n * ctx);
  for (let i = 0; i < tokens.length; ++i) tokens[i] = Math.floor(uniform() * 1000);
  return {acts, tokens};
}

function offsets(n, step) {
  const out = new Int32Array(n + 1);
  for (let i = 0; i <= n; ++i) out[i] = i * step;
  return out;
}

function batchOf(values, n) {
  const leafData = arrow.makeData({type: leafType, length: n * ctx * d, data: values.acts});
  const inner = arrow.makeData({type: innerType, length: n * ctx, valueOffsets: offsets(n * ctx, d), child: leafData});
  const outer = arrow.makeData({type: outerType, length: n, valueOffsets: offsets(n, ctx), child: inner});
  const children = [outer];
  if (o.tokens) {
    const ids = arrow.makeData({type: new arrow.Int32(), length: n * ctx, data: values.tokens});
    children.push(arrow.makeData({type: tokenType, length: n, child: ids}));
  }
  const struct = arrow.makeData({type: new arrow.Struct(fields), length: n, children});
  return new arrow.RecordBatch(schema, struct);
}

function npy(descr, shape, bytes) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
}

fs.mkdirSync(outDir, {recursive: true});
const shards = o.sequences.length;
const dataFiles = [];
const rowBytes = [], tokenBytes = [];
o.sequences.forEach((count, s) => {
  const name = `data-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.arrow`;
  const batches = [];
  for (let first = 0; first < count; first += o.batch_sequences) {
    const n = Math.min(o.batch_sequences, count - first);
    const values = makeValues(n);
    batches.push(batchOf(values, n));
    rowBytes.push(Buffer.from(values.acts.buffer));
    tokenBytes.push(Buffer.from(values.tokens.buffer));
  }
  const writer = new arrow.RecordBatchStreamWriter({compressionType: o.compress ? arrow.CompressionType.LZ4_FRAME : null});
  writer.reset(undefined, schema);
  for (const b of batches) writer.write(b);
  writer.finish();
  fs.writeFileSync(path.join(outDir, name), writer.toUint8Array(true));
  dataFiles.push({filename: name});
});

const info = {citation: '', description: '', features, homepage: '', license: ''};
fs.writeFileSync(path.join(outDir, 'dataset_info.json'), JSON.stringify(info, null, 2));
const stateJson = {_data_files: dataFiles, _fingerprint: 'fixture', _format_columns: null, _format_kwargs: {},
                   _format_type: null, _output_all_columns: false, _split: null};
fs.writeFileSync(path.join(outDir, 'state.json'), JSON.stringify(stateJson, null, 2));

const rows = o.sequences.reduce((a, b) => a + b, 0) * ctx;
const descr = {float32: '<f4', float16: '<f2', float64: '<f8'}[leafName];
fs.writeFileSync(path.join(outDir, 'rows.npy'), npy(descr, [rows, d], Buffer.concat(rowBytes)));
fs.writeFileSync(path.join(outDir, 'tokens.npy'), npy('<i4', [rows], Buffer.concat(tokenBytes)));
