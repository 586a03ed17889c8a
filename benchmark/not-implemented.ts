// Placeholder until the benchmark kit lands: `npm run bench` must exist and say so honestly.
console.log('nexure benchmark: not implemented yet (see the benchmark issue). Nothing was measured.')
