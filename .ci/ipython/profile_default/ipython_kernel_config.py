# Kernel profile for CI (IPYTHONDIR=.ci/ipython): plain tracebacks without ANSI colours,
# so failing cells read cleanly in logs. NO_COLOR=1 does not do this.
c = get_config()  # noqa: F821
c.InteractiveShell.colors = "nocolor"
