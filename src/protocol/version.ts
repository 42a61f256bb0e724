/** DuckTail's version (package.json's; a unit test keeps the two equal): `/health`, the lake's catalog, `ducktail --version`. */
export const VERSION = "0.1.0";
