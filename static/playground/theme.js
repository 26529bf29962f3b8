// The saved theme, applied before the first paint (a blocking script in <head>, so the page never flashes the
// other theme). A file rather than an inline script, so that the Content-Security-Policy can forbid inline ones.
try {
  const theme = localStorage.getItem("pg-theme");
  if (theme) document.documentElement.dataset.theme = theme;
} catch (e) {}
