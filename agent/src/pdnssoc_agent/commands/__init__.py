# SPDX-License-Identifier: Apache-2.0
"""One module per subcommand: ``add_arguments(parser)`` and ``run(config, args) -> int``."""
