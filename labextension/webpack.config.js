// Merged by @jupyterlab/builder into its webpack config. Why: webpack's deterministic module ids hash each
// module's identifier, and the container entry's identifier holds the absolute path of src/index.js, so a build
// in another folder (CI's fresh clone) came out different. Named ids use paths relative to the build's folder.
module.exports = {
  optimization: { moduleIds: "named" },
};
