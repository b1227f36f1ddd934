// autocannon ships no types; the bench describes what it uses of the result (load.ts).
declare module 'autocannon';
