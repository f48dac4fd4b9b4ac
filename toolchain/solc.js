#!/usr/bin/env node
// A native-looking `solc` over the npm `solc` package (the official compiler built to WebAssembly).
// forge, Ape (py-solc-x) and slither call it the way they call a native solc:
//   solc --version
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths P,...]   (JSON on stdin)
//   solc --combined-json abi,bin,... [--base-path P] [--allow-paths P] [prefix=path ...] file.sol ...
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);

function nativeVersion() {
  // "0.8.28+commit.7893614a.Emscripten.clang" -> "0.8.28+commit.7893614a.Linux.g++"
  return solc.version().replace(/\.Emscripten\.clang$/, '.Linux.g++');
}

function takeOption(name) {
  const values = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) {
      values.push(args[i + 1]);
      args.splice(i, 2);
      i--;
    } else if (args[i].startsWith(name + '=')) {
      values.push(args[i].slice(name.length + 1));
      args.splice(i, 1);
      i--;
    }
  }
  return values;
}

function takeFlag(name) {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

// Import resolution as the native compiler does it: remappings first, then the base path and include paths.
function makeImportCallback(basePath, includePaths, remappings) {
  const roots = [basePath || process.cwd(), ...includePaths];
  return function findImport(importPath) {
    let target = importPath;
    for (const [prefix, replacement] of remappings) {
      if (target.startsWith(prefix)) {
        target = replacement + target.slice(prefix.length);
        break;
      }
    }
    const candidates = path.isAbsolute(target) ? [target] : roots.map((root) => path.resolve(root, target));
    for (const candidate of candidates) {
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      }
    }
    return { error: `File not found: ${importPath} (searched ${candidates.join(', ')})` };
  };
}

function standardJson() {
  const basePath = takeOption('--base-path')[0];
  const includePaths = takeOption('--include-path');
  takeOption('--allow-paths');
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: makeImportCallback(basePath, includePaths, []) });
  process.stdout.write(output);
}

const COMBINED_TO_SELECTION = {
  abi: ['abi'],
  bin: ['evm.bytecode.object'],
  'bin-runtime': ['evm.deployedBytecode.object'],
  srcmap: ['evm.bytecode.sourceMap'],
  'srcmap-runtime': ['evm.deployedBytecode.sourceMap'],
  userdoc: ['userdoc'],
  devdoc: ['devdoc'],
  hashes: ['evm.methodIdentifiers'],
  metadata: ['metadata'],
  'storage-layout': ['storageLayout'],
};

function combinedJson(fields) {
  const basePath = takeOption('--base-path')[0];
  const includePaths = takeOption('--include-path');
  takeOption('--allow-paths');
  const evmVersion = takeOption('--evm-version')[0];
  const optimize = takeFlag('--optimize');
  const runs = takeOption('--optimize-runs')[0];
  const viaIR = takeFlag('--via-ir');
  const remappings = [];
  const files = [];
  for (const arg of args) {
    if (arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    if (eq > 0) remappings.push([arg.slice(0, eq), arg.slice(eq + 1)]);
    else files.push(arg);
  }
  const sources = {};
  for (const file of files) sources[file] = { content: fs.readFileSync(file, 'utf8') };
  const selection = new Set();
  for (const field of fields) for (const s of COMBINED_TO_SELECTION[field] || []) selection.add(s);
  const settings = {
    optimizer: { enabled: optimize, runs: runs ? Number(runs) : 200 },
    viaIR,
    remappings: remappings.map(([a, b]) => `${a}=${b}`),
    outputSelection: { '*': { '*': [...selection], '': fields.includes('ast') ? ['ast'] : [] } },
  };
  if (evmVersion) settings.evmVersion = evmVersion;
  const out = JSON.parse(
    solc.compile(JSON.stringify({ language: 'Solidity', sources, settings }), {
      import: makeImportCallback(basePath, includePaths, remappings),
    }),
  );
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  for (const e of out.errors || []) process.stderr.write((e.formattedMessage || e.message) + '\n');
  if (errors.length) process.exit(1);
  const pick = (obj, dotted) => dotted.split('.').reduce((o, k) => (o == null ? o : o[k]), obj);
  const combined = { contracts: {}, sources: {}, sourceList: Object.keys(out.sources || {}), version: nativeVersion() };
  for (const [file, contracts] of Object.entries(out.contracts || {})) {
    for (const [name, c] of Object.entries(contracts)) {
      const entry = {};
      for (const field of fields) {
        const sel = COMBINED_TO_SELECTION[field];
        if (!sel) continue;
        let value = pick(c, sel[0]);
        // Native solc prints these three as JSON strings inside the JSON.
        if (['abi', 'userdoc', 'devdoc', 'storage-layout'].includes(field) && typeof value !== 'string') value = JSON.stringify(value);
        entry[field] = value === undefined ? '' : value;
      }
      combined.contracts[`${file}:${name}`] = entry;
    }
  }
  for (const [file, s] of Object.entries(out.sources || {})) {
    combined.sources[file] = fields.includes('ast') ? { AST: s.ast, id: s.id } : { id: s.id };
  }
  process.stdout.write(JSON.stringify(combined));
}

if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${nativeVersion()}\n`);
} else if (takeFlag('--standard-json')) {
  standardJson();
} else {
  const fieldsArg = takeOption('--combined-json')[0];
  if (!fieldsArg) {
    process.stderr.write('solc shim: supports --version, --standard-json and --combined-json only\n');
    process.exit(2);
  }
  combinedJson(fieldsArg.split(',').map((f) => f.trim()).filter((f) => f !== 'compact-format'));
}
