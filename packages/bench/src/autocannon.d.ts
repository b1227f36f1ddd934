// autocannon ships no types; the server bench describes what it uses of the result (server-bench.ts).
declare module 'autocannon';
