<?php
// Runs WordPress's own WXR parsers (vendored here) outside WordPress: php harness.php FILE.
// Prints, as JSON, what each parser read from FILE. The stand-ins below are all the
// WordPress functions the three parser classes call.
class WP_Error {
	public function __construct( public $code = '', public $message = '', public $data = '' ) {}
	public function get_error_code() { return $this->code; }
	public function get_error_message() { return $this->message; }
	public function get_error_data() { return $this->data; }
}
function is_wp_error( $thing ) { return $thing instanceof WP_Error; }
function __( $text, $domain = 'default' ) { return $text; }
function esc_html( $text ) { return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' ); }
function _doing_it_wrong( $function, $message, $version ) { fwrite( STDERR, "$function: $message\n" ); }
function tally( array &$counts, $key ) { $counts[ $key ] = ( $counts[ $key ] ?? 0 ) + 1; }

$parsers = array( 'simplexml' => 'WXR_Parser_SimpleXML', 'xml' => 'WXR_Parser_XML', 'regex' => 'WXR_Parser_Regex' );
$result  = array();
foreach ( $parsers as $name => $class ) {
	require_once __DIR__ . "/class-wxr-parser-$name.php";
	$parsed = ( new $class() )->parse( $argv[1] );
	if ( is_wp_error( $parsed ) ) {
		$result[ $name ] = array( 'error' => $parsed->get_error_code(), 'data' => $parsed->get_error_data() );
		continue;
	}
	$r = array( 'version' => $parsed['version'], 'base_url' => $parsed['base_url'], 'authors' => count( $parsed['authors'] ), 'categories' => count( $parsed['categories'] ), 'tags' => count( $parsed['tags'] ), 'posts' => array(), 'statuses' => array(), 'comments' => 0, 'replies' => 0, 'approved' => array(), 'item_terms' => 0, 'postmeta' => array(), 'commentmeta' => 0 );
	foreach ( $parsed['posts'] as $post ) {
		tally( $r['posts'], $post['post_type'] ?? '' );
		tally( $r['statuses'], ( $post['post_type'] ?? '' ) . '/' . ( $post['status'] ?? '' ) );
		$r['item_terms'] += count( $post['terms'] ?? array() );
		foreach ( $post['postmeta'] ?? array() as $meta ) { tally( $r['postmeta'], $meta['key'] ); }
		foreach ( $post['comments'] ?? array() as $comment ) {
			$r['comments'] += 1;
			$r['replies']  += (int) $comment['comment_parent'] ? 1 : 0;
			tally( $r['approved'], $comment['comment_approved'] );
			$r['commentmeta'] += count( $comment['commentmeta'] ?? array() );
		}
	}
	foreach ( array( 'posts', 'statuses', 'approved', 'postmeta' ) as $key ) { ksort( $r[ $key ] ); }
	$result[ $name ] = $r;
}
echo json_encode( $result, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_FORCE_OBJECT ), "\n";
