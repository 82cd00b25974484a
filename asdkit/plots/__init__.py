"""Display: plots that take ``ax=`` and return it, and the computations behind the data-exploration figures.

``asdkit.plots.plot_roc(...)`` etc. come from :mod:`asdkit.plots.figures`;
:mod:`asdkit.plots.explore` computes what the exploration figures show.
"""
from asdkit.plots.figures import *  # noqa: F401,F403
from asdkit.plots.figures import __all__  # noqa: F401
